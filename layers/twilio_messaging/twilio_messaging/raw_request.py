"""Any authenticated Twilio REST call (docs/api.md, "Any Twilio request"), with the credentials kept on Twilio.

The caller chooses method, target, query, headers, body and retries; this module makes sure the
credentials only ever travel to Twilio's hosts over https (or to the configured base URL): every
URL check happens before anything is sent, and redirects are followed only to such hosts.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from twilio_messaging.credential_guard import (
    REFUSED_PROBLEM,
    fully_decoded,
    redact_bytes,
    redact_text,
    redact_value,
    refuses,
)
from twilio_messaging.deadline import Deadline
from twilio_messaging.observability import count, logger
from twilio_messaging.twilio_client import API_VERSION_PATH, RetryPolicy, TwilioClient
from twilio_messaging.validation import (
    Problems,
    check_text,
    check_unknown_fields,
    has_space_or_control,
    integer_field,
    is_json_media_type,
    type_name,
)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
RESPONSE_TYPES = ("json", "text", "binary")
RAW_FIELDS = {
    "method",
    "path",
    "url",
    "query",
    "headers",
    "data",
    "formData",
    "files",
    "responseType",
    "timeoutMs",
    "retry",
}
RETRY_FIELDS = {"maxRetries", "delayMs", "exponentialBackoff", "retryOnAllErrors"}
FILE_FIELDS = {"field", "filename", "contentType", "contentBase64"}
DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 900_000  # Lambda's own maximum; the invocation's deadline caps it anyway
MAX_RETRIES = 5
DEFAULT_DELAY_MS = 1000
MAX_DELAY_MS = 60_000
MAX_REDIRECTS = 3
RATE_LIMIT_RETRIES = 3
PLACEHOLDERS = ("{AccountSid}", "$TWILIO_ACCOUNT_SID")

# The HTTP client owns these: credentials, framing and routing are never the caller's to set.
FORBIDDEN_HEADERS = {
    "authorization",
    "proxy-authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
}
# Not passed back: hop-by-hop headers (RFC 9110 section 7.6.1), anything carrying credentials,
# and framing that no longer matches the decoded body.
DROPPED_RESPONSE_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "authorization",
    "set-cookie",
    "set-cookie2",
    "cookie",
    "content-length",
    "content-encoding",
}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_HOSTNAME = re.compile(r"^[a-z0-9.-]+\Z")
_REDIRECTS = {301, 302, 303, 307, 308}

ResponseType = Literal["json", "text", "binary"]
Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class UploadFile:
    field_name: str
    filename: str
    content_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class UserRetryPolicy(RetryPolicy):
    """The caller's retry settings, applied as given: no jitter, so `delayMs` means what it says."""

    def delay(self, attempt: int) -> float:
        return min(self.base_delay * (2 ** (attempt - 1) if self.exponential else 1), self.max_delay)


@dataclass(frozen=True)
class RawRequest:
    method: str = "GET"
    path: str | None = None  # relative to {base}/2010-04-01, placeholders not yet replaced
    url: str | None = None
    query: Pairs = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Pairs | None = None  # form pairs, or bytes sent as they are
    form_fields: Pairs = field(default_factory=list)
    files: list[UploadFile] = field(default_factory=list)
    response_type: ResponseType = "json"
    timeout: float = DEFAULT_TIMEOUT_MS / 1000
    retry: UserRetryPolicy = field(default_factory=lambda: UserRetryPolicy(max_retries=0, max_rate_limit_retries=0))

    @property
    def multipart(self) -> bool:
        return bool(self.form_fields or self.files)


# --- target checks --------------------------------------------------------------------------


def path_problem(path: str) -> str | None:
    """Why a path may reach outside the resource it names, or None."""
    if has_space_or_control(path):
        return "must not contain whitespace or control characters"
    if "#" in path:
        return "must not contain a fragment (#)"
    decoded = fully_decoded(path.split("?", 1)[0])
    if "\\" in decoded:
        return "must not contain backslashes"
    if any(segment in (".", "..") for segment in decoded.split("/")):
        return "must not contain . or .. segments (plain or percent-encoded): it may not leave the API root"
    return None


def url_problem(url: str, may_receive_credentials: Any) -> str | None:
    """Why credentials must not go to `url`, or None: https on twilio.com (or the configured base)."""
    if has_space_or_control(url) or "\\" in url:
        return "must not contain whitespace, control characters or backslashes"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return "must be an absolute https URL"
    if "@" in parts.netloc:
        return "must not contain user information (user@host)"
    if parts.fragment or "#" in url:
        return "must not contain a fragment (#)"
    if not _HOSTNAME.match(parts.hostname or ""):
        return "must name an ASCII host name"
    if not may_receive_credentials(url):
        if parts.scheme != "https":
            return "must use https"
        return "must be on one of Twilio's REST API hosts, such as api.twilio.com or messaging.twilio.com"
    return path_problem(parts.path) or (REFUSED_PROBLEM if refuses(url) else None)


# --- field parsing --------------------------------------------------------------------------


def _scalar(value: Any) -> str | None:
    """A query, form or multipart value as text; booleans as Twilio writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _pairs(name: str, value: Any, problems: Problems) -> Pairs:
    """An object whose values are scalars or arrays of scalars (repeated keys) as ordered pairs."""
    if not isinstance(value, dict):
        problems.add(name, f"must be an object, not {type_name(value)}")
        return []
    pairs: Pairs = []
    for key, item in value.items():
        for element in item if isinstance(item, list) else [item]:
            text = _scalar(element)
            if text is None:
                problems.add(f"{name}.{key}", "must be a string, number, boolean or an array of them")
                break
            pairs.append((key, text))
    return pairs


def _headers(value: Any, problems: Problems) -> dict[str, str]:
    if not isinstance(value, dict):
        problems.add("headers", f"must be an object, not {type_name(value)}")
        return {}
    headers: dict[str, str] = {}
    for name, item in value.items():
        label = f"headers.{name.replace(chr(13), '<CR>').replace(chr(10), '<LF>')}"
        text = _scalar(item)
        if "\r" in name or "\n" in name or (text is not None and ("\r" in text or "\n" in text)):
            problems.add(label, "must not contain CR or LF characters")
        elif not _HEADER_NAME.match(name):
            problems.add(label, "is not a valid header name")
        elif name.lower() in FORBIDDEN_HEADERS:
            problems.add(label, "cannot be set: the function sets it")
        elif text is None:
            problems.add(label, "must be a string")
        elif text != text.strip():
            problems.add(label, "must not start or end with whitespace")
        elif not text.isascii():
            problems.add(label, "must be ASCII (encode other characters, e.g. RFC 8187)")
        else:
            headers[name] = text
    return headers


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def _body(value: Any, headers: dict[str, str], problems: Problems) -> bytes | Pairs | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8", "replace")  # a lone surrogate is already a problem (check_text)
    if is_json_media_type(_header(headers, "content-type")):
        return json.dumps(value, separators=(",", ":")).encode("utf-8")
    return _pairs("data", value, problems)


def _files(value: Any, problems: Problems) -> list[UploadFile]:
    if not isinstance(value, list) or not value:
        problems.add("files", "must be a non-empty array of {field, filename, contentType, contentBase64}")
        return []
    files: list[UploadFile] = []
    for index, item in enumerate(value):
        name = f"files[{index}]"
        if not isinstance(item, dict):
            problems.add(name, f"must be an object, not {type_name(item)}")
            continue
        before = len(problems.items)
        for key in sorted(set(item) - FILE_FIELDS):
            problems.add(f"{name}.{key}", "is not a known field")
        for key in ("field", "filename"):
            text = item.get(key)
            if not isinstance(text, str) or not text or any(ch in text for ch in '\r\n"'):
                problems.add(f"{name}.{key}", "is required: a string without quotes, CR or LF")
        content_type = item.get("contentType", "application/octet-stream")
        if not isinstance(content_type, str) or not content_type or "\r" in content_type or "\n" in content_type:
            problems.add(f"{name}.contentType", "must be a media type such as image/png")
        try:
            content = base64.b64decode(item.get("contentBase64") or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            problems.add(f"{name}.contentBase64", "is required: the file's bytes in base64")
            continue
        if len(problems.items) == before:
            files.append(UploadFile(item["field"], item["filename"], content_type, content))
    return files


def _retry(value: Any, problems: Problems) -> UserRetryPolicy:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.add("retry", f"must be an object, not {type_name(value)}")
        value = {}
    for key in sorted(set(value) - RETRY_FIELDS):
        problems.add(f"retry.{key}", "is not a known field")
    max_retries = integer_field(value, "maxRetries", 0, MAX_RETRIES, problems, label="retry.maxRetries") or 0
    delay_ms = integer_field(value, "delayMs", 0, MAX_DELAY_MS, problems, label="retry.delayMs")
    delay_ms = DEFAULT_DELAY_MS if delay_ms is None else delay_ms
    flags: dict[str, bool] = {}
    for key in ("exponentialBackoff", "retryOnAllErrors"):
        flag = value.get(key, False)
        if not isinstance(flag, bool):
            problems.add(f"retry.{key}", "must be true or false")
        flags[key] = flag is True
    return UserRetryPolicy(
        max_retries=max_retries,
        base_delay=delay_ms / 1000,
        exponential=flags["exponentialBackoff"],
        retry_on_all_errors=flags["retryOnAllErrors"],
        # 429 is always safe to repeat: waited out (Retry-After) within the deadline, whatever maxRetries
        max_rate_limit_retries=RATE_LIMIT_RETRIES,
        max_delay=MAX_DELAY_MS / 1000,
    )


def parse_raw_request(payload: Any, may_receive_credentials: Any) -> RawRequest:
    """The raw request, checked in full before anything is sent; every problem at once.

    `may_receive_credentials(url)` is the client's rule for where its credentials may go.
    """
    problems = Problems()
    if not isinstance(payload, dict):
        problems.add(
            "(body)",
            f'must be an object like {{"path": "/Accounts/{{AccountSid}}/Calls.json"}}, not {type_name(payload)}',
        )
        problems.raise_if_any()
    check_unknown_fields(payload, RAW_FIELDS, problems)
    check_text(payload, problems)  # else a lone surrogate fails the UTF-8 encoding of the request: a 500
    method = payload.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        problems.add("method", f"must be one of {', '.join(METHODS)}")
        method = "GET"
    method = method.upper()
    _check_target(payload.get("path"), payload.get("url"), may_receive_credentials, problems)
    query = _pairs("query", payload["query"], problems) if payload.get("query") is not None else []
    headers = _headers(payload["headers"], problems) if payload.get("headers") is not None else {}
    body, form_fields, files = _content(payload, method, headers, problems)
    response_type = payload.get("responseType", "json")
    if response_type not in RESPONSE_TYPES:
        problems.add("responseType", f"must be one of {', '.join(RESPONSE_TYPES)}")
    timeout_ms = integer_field(payload, "timeoutMs", 1, MAX_TIMEOUT_MS, problems) or DEFAULT_TIMEOUT_MS
    retry = _retry(payload.get("retry"), problems)
    problems.raise_if_any()
    return RawRequest(
        method=method,
        path=payload.get("path"),
        url=payload.get("url"),
        query=query,
        headers=headers,
        body=body,
        form_fields=form_fields,
        files=files,
        response_type=response_type,
        timeout=timeout_ms / 1000,
        retry=retry,
    )


def _check_target(path: Any, url: Any, may_receive_credentials: Any, problems: Problems) -> None:
    """One of `path` (under the 2010-04-01 API) or `url`; neither may leave Twilio's REST API
    hosts nor name a resource that holds credentials."""
    if path is None and url is None:
        problems.add("path", "is required (or url)")
    elif path is not None and url is not None:
        problems.add("url", "cannot be combined with path: give one of them")
    elif path is not None:
        if not isinstance(path, str) or not path.startswith("/"):
            problems.add("path", "must be a string starting with /, relative to the 2010-04-01 API root")
        elif problem := path_problem(path):
            problems.add("path", problem)
        elif refuses(API_VERSION_PATH + _with_placeholder_sid(path)):
            problems.add("path", REFUSED_PROBLEM)
    elif not isinstance(url, str):
        problems.add("url", f"must be a string, not {type_name(url)}")
    elif problem := url_problem(_with_placeholder_sid(url), may_receive_credentials):
        problems.add("url", problem)


def _content(
    payload: dict[str, Any], method: str, headers: dict[str, str], problems: Problems
) -> tuple[bytes | Pairs | None, Pairs, list[UploadFile]]:
    """The body: `data` (form pairs or bytes), or a multipart upload (`formData`, `files`)."""
    body = _body(payload.get("data"), headers, problems)
    form_fields = _pairs("formData", payload["formData"], problems) if payload.get("formData") is not None else []
    files = _files(payload["files"], problems) if payload.get("files") is not None else []
    if body is not None and (form_fields or files):
        problems.add("data", "cannot be combined with formData or files")
    if (form_fields or files) and _header(headers, "content-type"):
        problems.add(
            "headers.Content-Type", "cannot be set with formData or files: the multipart boundary is generated"
        )
    if method == "GET" and (body is not None or form_fields or files):
        problems.add("data", "is not sent with GET: use query")
    return body, form_fields, files


# --- execution ------------------------------------------------------------------------------


def _with_placeholder_sid(text: str, account_sid: str = "AC00000000000000000000000000000000") -> str:
    for placeholder in PLACEHOLDERS:
        text = text.replace(placeholder, account_sid)
    return text


def target_url(client: TwilioClient, request: RawRequest, deadline: Deadline | None = None) -> str:
    if request.url is not None:
        return _with_placeholder_sid(request.url, client.account_sid(deadline))
    return client.api_url(_with_placeholder_sid(request.path or "", client.account_sid(deadline)))


def _send_kwargs(request: RawRequest) -> dict[str, Any]:
    headers = dict(request.headers)
    if request.multipart:
        # (None, value) parts are plain fields: requests then builds multipart even without files.
        parts: list[tuple[str, Any]] = [(name, (None, value)) for name, value in request.form_fields]
        parts.extend((f.field_name, (f.filename, f.content, f.content_type)) for f in request.files)
        return {"files": parts, "headers": headers}
    if isinstance(request.body, bytes) and not _header(headers, "content-type"):
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # Twilio's default
    return {"data": request.body, "headers": headers}


def _response_body(response: Any, response_type: ResponseType) -> Any:
    """The answer's body as the caller asked for it, every credential value in it redacted."""
    if response_type == "binary":
        return base64.b64encode(redact_bytes(response.content)).decode("ascii")
    if response_type == "text":
        return redact_text(response.text)
    if not response.content:
        return None
    try:
        return redact_value(response.json())
    except ValueError:
        return redact_text(response.text)  # not JSON (an XML or HTML error page): still the caller's to see


def _response_headers(response: Any) -> dict[str, str]:
    return {
        name.lower(): value for name, value in response.headers.items() if name.lower() not in DROPPED_RESPONSE_HEADERS
    }


def execute_raw_request(client: TwilioClient, request: RawRequest, deadline: Deadline) -> dict[str, Any]:
    """Twilio's answer as {statusCode, headers, body}, whatever its status."""
    url = target_url(client, request, deadline)
    method, kwargs = request.method, _send_kwargs(request)
    params: Pairs | None = request.query or None
    for hop in range(MAX_REDIRECTS + 1):
        response = client.request(
            method,
            url,
            deadline=deadline,
            # The caller's retries apply to any method when asked for; else the method decides.
            idempotent=True if request.retry.max_retries > 0 else None,
            params=params,
            timeout=request.timeout,
            retry=request.retry,
            raise_for_status=False,
            **kwargs,
        )
        location = response.headers.get("Location")
        if response.status_code not in _REDIRECTS or not location or hop == MAX_REDIRECTS:
            break
        target = urljoin(response.url, location)
        if url_problem(target, client.may_receive_credentials):
            break  # not a host for credentials: the caller gets the redirect itself
        if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
            method, kwargs = (
                "GET",
                {"headers": {k: v for k, v in request.headers.items() if k.lower() != "content-type"}},
            )
        url, params = target, None  # the Location carries its own query
    count("RawRequests")
    logger.info(
        "Raw Twilio request answered",
        extra={
            "method": method,
            "host": urlsplit(url).hostname,
            "path": urlsplit(url).path,
            "status": response.status_code,
        },
    )
    return {
        "statusCode": response.status_code,
        "headers": _response_headers(response),
        "body": _response_body(response, request.response_type),
    }
