"""Listing messages, incoming phone numbers and verified caller IDs (docs/api.md, "List").

Pages are walked by following Twilio's `next_page_uri` until `limit` is reached, the pages end,
or the function runs short of time; never further. `nextPageToken` is an opaque base64url JSON
`{"r": resource, "u": page URI, "o": offset, "f": filters}`: the URI of the page the answer
stopped in and how many of its records were already returned, so a caller continues exactly
there even when `limit` cut a page in the middle. A token only ever names this account's list
path on the configured API: it cannot point the function (and its credentials) anywhere else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlencode, urlsplit

from twilio_messaging.deadline import Deadline
from twilio_messaging.errors import NotFound, TwilioUnavailable, ValidationError
from twilio_messaging.message_model import normalize_message
from twilio_messaging.observability import logger
from twilio_messaging.twilio_client import API_VERSION_PATH, TwilioClient
from twilio_messaging.validation import (
    Problems,
    check_unknown_fields,
    has_space_or_control,
    integer_field,
    is_recipient,
    is_sender,
    type_name,
)
from twilio_messaging.values import format_utc, parse_datetime

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_LIMIT = 10000
TOKEN_VERSION = 1
MAX_TOKEN_CHARACTERS = 4096
# Time kept back before fetching another page: a partial answer with a token beats a timeout.
MIN_SECONDS_FOR_A_PAGE = 1.0


def _phone_number(resource: dict[str, Any]) -> dict[str, Any]:
    capabilities = {str(k).lower(): v for k, v in (resource.get("capabilities") or {}).items()}
    return {
        "sid": resource.get("sid"),
        "phoneNumber": resource.get("phone_number"),
        "friendlyName": resource.get("friendly_name"),
        "capabilities": {name: bool(capabilities.get(name)) for name in ("sms", "mms", "voice")},
    }


def _caller_id(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "sid": resource.get("sid"),
        "phoneNumber": resource.get("phone_number"),
        "friendlyName": resource.get("friendly_name"),
    }


@dataclass(frozen=True)
class ListResource:
    name: str  # the direct-invoke `resource` value and the answer's list key
    route: str  # the API Gateway resource
    twilio_path: str  # under /Accounts/{AccountSid}
    envelope_key: str  # the list's key in Twilio's page
    normalize: Callable[[dict[str, Any]], dict[str, Any]]
    filters: dict[str, str] = field(default_factory=dict)  # request field -> Twilio parameter


RESOURCES = {
    resource.name: resource
    for resource in (
        ListResource(
            "messages",
            "/messages",
            "/Messages.json",
            "messages",
            normalize_message,
            {
                "to": "To",
                "from": "From",
                "dateSent": "DateSent",
                "dateSentAfter": "DateSent>",
                "dateSentBefore": "DateSent<",
            },
        ),
        ListResource(
            "phoneNumbers", "/phone-numbers", "/IncomingPhoneNumbers.json", "incoming_phone_numbers", _phone_number
        ),
        ListResource("callerIds", "/caller-ids", "/OutgoingCallerIds.json", "outgoing_caller_ids", _caller_id),
    )
}
RESOURCE_BY_ROUTE = {resource.route: resource for resource in RESOURCES.values()}
PAGING_FIELDS = {"pageSize", "pageToken", "limit"}
_PAGE_PATH = re.compile(rf"^{re.escape(API_VERSION_PATH)}/Accounts/(AC[0-9a-fA-F]{{32}})(/[A-Za-z]+\.json)\Z")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


@dataclass(frozen=True)
class PagePosition:
    """Where a walk starts or stopped: a page's URI (relative to the API base) and records already taken."""

    uri: str
    offset: int = 0


@dataclass(frozen=True)
class ListRequest:
    resource: ListResource
    page_size: int
    limit: int
    filters: dict[str, str]  # request field -> value, as the caller gave them
    position: PagePosition | None = None  # from pageToken

    def twilio_params(self) -> list[tuple[str, str]]:
        params = [(self.resource.filters[name], value) for name, value in self.filters.items()]
        return [*params, ("PageSize", str(self.page_size))]


# --- page tokens ----------------------------------------------------------------------------


def encode_token(resource: ListResource, position: PagePosition, filters: dict[str, str]) -> str:
    document = {"v": TOKEN_VERSION, "r": resource.name, "u": position.uri, "o": position.offset, "f": filters}
    raw = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def page_uri_problem(uri: Any, resource: ListResource) -> str | None:
    """Why `uri` is not a page of `resource` on the configured API, or None when it is one."""
    if not isinstance(uri, str) or not uri.startswith("/"):
        return "does not name a page of this list"
    if has_space_or_control(uri) or "\\" in uri or "#" in uri:
        return "does not name a page of this list"
    parts = urlsplit(uri)
    match = _PAGE_PATH.match(parts.path)
    if parts.scheme or parts.netloc or not match or match.group(2) != resource.twilio_path:
        return f"does not name a page of the {resource.name} list"
    return None


def decode_token(token: str, resource: ListResource) -> tuple[PagePosition | None, dict[str, str], str | None]:
    """The position and filters in a token, or the problem with it."""
    invalid = "is not a token from a previous answer of this list"
    if len(token) > MAX_TOKEN_CHARACTERS:
        return None, {}, invalid
    try:
        document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8"))
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None, {}, invalid
    if not isinstance(document, dict) or document.get("v") != TOKEN_VERSION:
        return None, {}, invalid
    if document.get("r") != resource.name:
        return None, {}, f"belongs to another list, not {resource.name}"
    offset, filters = document.get("o"), document.get("f")
    if type(offset) is not int or not 0 <= offset < MAX_PAGE_SIZE:
        return None, {}, invalid
    if not isinstance(filters, dict) or not all(
        k in resource.filters and isinstance(v, str) for k, v in filters.items()
    ):
        return None, {}, invalid
    problem = page_uri_problem(document.get("u"), resource)
    if problem:
        return None, {}, problem
    return PagePosition(document["u"], offset), filters, None


# --- request parsing ------------------------------------------------------------------------


def _fields_and_resource(
    fields: dict[str, Any] | None, route: str | None, problems: Problems
) -> tuple[dict[str, Any], ListResource | None]:
    """The request fields, and the resource they are for: the route's, or the `resource` field."""
    if route is not None:
        resource = RESOURCE_BY_ROUTE.get(route)
        if resource is None:
            raise NotFound(f"no list at {route or '(no route)'}")
        return dict(fields or {}), resource
    payload = {} if fields is None else fields
    if not isinstance(payload, dict):
        problems.add("(event)", f'must be an object like {{"resource": "messages"}}, not {type_name(payload)}')
        problems.raise_if_any()
    fields = dict(payload)
    name = fields.pop("resource", "messages")
    if not isinstance(name, str) or name not in RESOURCES:  # an array or object is not even hashable
        problems.add("resource", f"must be one of {', '.join(RESOURCES)}")
        return fields, None
    return fields, RESOURCES[name]


def _date_filter(name: str, value: str, problems: Problems) -> str | None:
    """YYYY-MM-DD for every date filter; dateSentAfter/Before also take a date-time in UTC.

    Sent as an ISO 8601 date-time in UTC, as Twilio's OpenAPI description declares these
    parameters (`format: date-time`) and its SDKs send them: a date becomes its midnight UTC.
    """
    if _DATE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            problems.add(name, f"is not a calendar date: {value}")
            return None
        return f"{day.isoformat()}T00:00:00Z"
    moment = parse_datetime(value) if name != "dateSent" else None
    if moment is None:
        allowed = "YYYY-MM-DD" if name == "dateSent" else "YYYY-MM-DD or an ISO 8601 date-time"
        problems.add(name, f"must be {allowed}")
        return None
    return format_utc(moment)


def _filters(fields: dict[str, Any], resource: ListResource, problems: Problems) -> dict[str, str]:
    filters: dict[str, str] = {}
    for name in resource.filters:
        value = fields.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            problems.add(name, "must be a non-empty string")
            continue
        value = value.strip()
        if name == "to" and not is_recipient(value):
            problems.add(name, "must be an E.164 number (+ and 8-15 digits) or a channel address")
        elif name == "from" and not is_sender(value):
            problems.add(name, "must be a phone number, short code, sender ID or channel address")
        elif name.startswith("dateSent"):
            checked = _date_filter(name, value, problems)
            if checked:
                filters[name] = checked
        else:
            filters[name] = value
    after, before = filters.get("dateSentAfter"), filters.get("dateSentBefore")
    if after and before and after > before:  # same-format ISO strings sort chronologically
        problems.add("dateSentAfter", "must not be later than dateSentBefore")
    return filters


def parse_list_request(fields: Any, route: str | None = None, repeated: Iterable[str] = ()) -> ListRequest:
    """The list request from an API route's query fields (`route` given, one value each, and the
    names `repeated` in the query) or a direct payload (its `resource` field names the list);
    every problem at once."""
    problems = Problems()
    for name in repeated:
        problems.add(name, "must be given once")
    fields, resource = _fields_and_resource(fields, route, problems)
    if resource is None:
        check_unknown_fields(fields, PAGING_FIELDS | set(RESOURCES["messages"].filters), problems)
        problems.raise_if_any()
    assert resource is not None
    check_unknown_fields(fields, PAGING_FIELDS | set(resource.filters), problems)
    page_size = integer_field(fields, "pageSize", 1, MAX_PAGE_SIZE, problems, text=True)
    limit = integer_field(fields, "limit", 1, MAX_LIMIT, problems, text=True)
    filters = _filters(fields, resource, problems)
    position = None
    token = fields.get("pageToken")
    if token is not None:
        if not isinstance(token, str) or not token:
            problems.add("pageToken", "must be a non-empty string")
        else:
            position, token_filters, problem = decode_token(token, resource)
            if problem:
                problems.add("pageToken", problem)
            elif filters and filters != token_filters:
                problems.add("pageToken", "belongs to a query with other filters: repeat them unchanged or omit them")
            else:
                filters = token_filters
    problems.raise_if_any()
    page_size = page_size or DEFAULT_PAGE_SIZE
    return ListRequest(resource, page_size, limit or page_size, filters, position)


# --- walking pages --------------------------------------------------------------------------


def _same_account(uri: str, account_sid: str) -> bool:
    match = _PAGE_PATH.match(urlsplit(uri).path)
    return match is not None and match.group(1) == account_sid


def _fetch_page(client: TwilioClient, request: ListRequest, uri: str, deadline: Deadline) -> tuple[list[Any], Any]:
    page = client.request_json("GET", f"{client.base_url}{uri}", deadline=deadline)
    records = page.get(request.resource.envelope_key)
    if not isinstance(records, list):
        raise TwilioUnavailable(f"Twilio's page has no {request.resource.envelope_key} list")
    return records, page.get("next_page_uri")


def list_resource(client: TwilioClient, request: ListRequest, deadline: Deadline) -> dict[str, Any]:
    """One answer of at most `limit` records, and the token that continues right after the last."""
    resource = request.resource
    account_sid = client.account_sid(deadline)
    if request.position is None:
        first = f"{API_VERSION_PATH}/Accounts/{account_sid}{resource.twilio_path}"
        position: PagePosition | None = PagePosition(f"{first}?{urlencode(request.twilio_params())}")
    else:
        if not _same_account(request.position.uri, account_sid):
            problem = {"field": "pageToken", "problem": "belongs to another Twilio account"}
            raise ValidationError.from_problems([problem])
        position = request.position
    records: list[dict[str, Any]] = []
    slowest = 0.0
    pages = 0
    while position is not None and len(records) < request.limit:
        if pages and deadline.remaining() < max(MIN_SECONDS_FOR_A_PAGE, 2 * slowest):
            logger.info("Stopping the list early to answer in time", extra={"pages": pages})
            break
        started = time.monotonic()
        page, next_uri = _fetch_page(client, request, position.uri, deadline)
        slowest = max(slowest, time.monotonic() - started)
        pages += 1
        taken = page[position.offset : position.offset + request.limit - len(records)]
        records.extend(resource.normalize(item) for item in taken if isinstance(item, dict))
        consumed = position.offset + len(taken)
        if consumed < len(page):  # `limit` cut this page: continue inside it
            position = PagePosition(position.uri, consumed)
        elif next_uri:
            if page_uri_problem(next_uri, resource) or not _same_account(next_uri, account_sid):
                raise TwilioUnavailable("Twilio's next_page_uri does not name a page of the same list")
            position = PagePosition(next_uri)
        else:
            position = None
    logger.info("Listed", extra={"resource": resource.name, "count": len(records), "pages": pages})
    answer: dict[str, Any] = {resource.name: records}
    if resource.name == "callerIds":
        answer["phoneNumbers"] = ",".join(str(r["phoneNumber"]) for r in records if r.get("phoneNumber"))
    answer["nextPageToken"] = encode_token(resource, position, request.filters) if position else None
    return answer
