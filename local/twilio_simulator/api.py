"""Twilio's REST API, simulated: every request routed and checked against Twilio's description,
authenticated as Twilio authenticates, then served from the simulator's state.

Order, as Twilio's: an unknown path is a 404 (a method the path lacks, a 405); then Basic auth
(401, 20003); then the description and Twilio's rules (400); then the operation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from local.twilio_simulator import errors
from local.twilio_simulator.config import PhoneNumber, SimulatorConfig
from local.twilio_simulator.errors import TwilioError
from local.twilio_simulator.lifecycle import Lifecycle
from local.twilio_simulator.outcomes import recipient_outcome
from local.twilio_simulator.paging import page_of
from local.twilio_simulator.rules import create_request, error_for, parse_date_time
from local.twilio_simulator.segments import segment_count
from local.twilio_simulator.spec_validation import Checked, Problem, spec_validator
from local.twilio_simulator.state import (
    ACCOUNT_PATH,
    API_VERSION,
    FINAL_STATUSES,
    Message,
    State,
    StatusChange,
    new_sid,
    rfc2822,
    utc_now,
)

ACCOUNT_PREFIX = "/2010-04-01/Accounts/{AccountSid}"


@dataclass
class ApiAnswer:
    status: int
    body: dict[str, Any] | None
    hold_seconds: float = 0.0  # keep the answer back this long (the "times out" test number)


class TwilioApi:
    def __init__(self, config: SimulatorConfig, state: State, lifecycle: Lifecycle, auth_token: Callable[[], str]):
        self.config = config
        self._state = state
        self._lifecycle = lifecycle
        self._auth_token = auth_token
        self._started = utc_now()
        self._operations: dict[str, Callable[[Checked, str], ApiAnswer]] = {
            "CreateMessage": self._create,
            "FetchMessage": self._fetch,
            "DeleteMessage": self._delete,
            "UpdateMessage": self._update,
            "ListMessage": self._list_messages,
            "ListIncomingPhoneNumber": self._list_numbers,
            "ListOutgoingCallerId": self._list_caller_ids,
        }

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> ApiAnswer:
        kind = f"{method} (unknown path)"
        try:
            validator = spec_validator(self.config.spec_path)
            operation, params, allowed = validator.route(method, path)
            if operation is not None:
                kind = f"{method} {operation.template.removeprefix(ACCOUNT_PREFIX)}"
            self._count(kind)
            if operation is None:
                raise errors.method_not_allowed(method, path) if allowed else errors.not_found(path)
            self._authenticate(headers.get("authorization", ""), params.get("AccountSid"))
            checked = validator.check(operation, params, query, body, headers.get("content-type", ""))
            problems = self._without_ignored(checked.problems, method, path)
            if problems:
                raise error_for(problems, operation.operation_id, path)
            serve = self._operations.get(operation.operation_id)
            if serve is None:
                self._not_simulated(kind)
                raise errors.not_found(path, invalid=False)
            return serve(checked, path)
        except TwilioError as error:
            if error.invalid:
                self._record_invalid(method, path, query, error)
            return ApiAnswer(error.status, error.body())

    def _without_ignored(self, problems: list[Problem], method: str, path: str) -> list[Problem]:
        """With reject_unknown_parameters off, an unknown parameter is ignored, as Twilio ignores
        it, and noted as Twilio notes it: warning 20001."""
        if self.config.reject_unknown_parameters:
            return problems
        unknown = [p for p in problems if p.kind == "unknown"]
        if unknown:
            warning = {"at": utc_now().isoformat(), "method": method, "path": path, "code": errors.BAD_REQUEST}
            warning["message"] = "Unknown parameters: " + ", ".join(p.name for p in unknown)
            with self._state.lock:
                self._state.counters.warnings.append(warning)
        return [p for p in problems if p.kind != "unknown"]

    def _count(self, kind: str) -> None:
        with self._state.lock:
            self._state.counters.requests[kind] += 1

    def _not_simulated(self, kind: str) -> None:
        with self._state.lock:
            self._state.counters.not_simulated[kind] += 1

    def _record_invalid(self, method: str, path: str, query: str, error: TwilioError) -> None:
        record = {
            "at": utc_now().isoformat(),
            "method": method,
            "path": path,
            "query": query,
            "status": error.status,
            "code": error.code,
            "message": error.message,
            "problems": error.details.get("problems", []),
        }
        with self._state.lock:
            self._state.counters.invalid_requests.append(record)

    def _authenticate(self, authorization: str, account_sid: str | None) -> None:
        """Basic auth with the account and its auth token, or an API key and its secret; the
        path's account must be the simulated one."""
        scheme, _, encoded = authorization.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise errors.authenticate() from None
        accepted = [(self.config.account_sid, self._auth_token())]
        if self.config.api_key_sid and self.config.api_key_secret:
            accepted.append((self.config.api_key_sid, self.config.api_key_secret))
        matches = [
            hmac.compare_digest(user.encode(), u.encode()) & hmac.compare_digest(password.encode(), p.encode())
            for u, p in accepted
        ]
        if scheme.lower() != "basic" or not any(matches) or account_sid not in (None, self.config.account_sid):
            raise errors.authenticate()

    def _create(self, checked: Checked, path: str) -> ApiAnswer:
        now = utc_now()
        request = create_request(checked.form, self.config, now)
        status = "scheduled" if request.send_at else "accepted" if request.service_sid else "queued"
        message = Message(
            sid=new_sid("MM" if request.media_urls else "SM"),
            account_sid=self.config.account_sid,
            to=request.to,
            sender=request.sender,
            service_sid=request.service_sid,
            body=request.body,
            media_urls=request.media_urls,
            direction="outbound-api",
            status=status,
            status_callback=request.status_callback,
            num_segments=segment_count(request.body),
            date_created=now,
            date_updated=now,
            send_at=request.send_at,
            validity_period=request.validity_period,
            form=checked.form,
            history=[StatusChange(status, now)],
        )
        steps = self._lifecycle.admit(message)  # 21611 when a single From's queue is full
        resource = message.resource()
        self._state.add(message)
        self._lifecycle.start(message, steps)
        outcome = recipient_outcome(request.to)
        if outcome.kind == "server_error":
            return ApiAnswer(500, errors.internal_error().body())
        hold = self.config.slow_answer_seconds if outcome.kind == "slow_answer" else 0.0
        return ApiAnswer(201, resource, hold)

    def _message(self, checked: Checked, path: str) -> Message:
        message = self._state.get(checked.path_params["Sid"])
        if message is None:
            raise errors.not_found(path, invalid=False)
        return message

    def _fetch(self, checked: Checked, path: str) -> ApiAnswer:
        with self._state.lock:
            return ApiAnswer(200, self._message(checked, path).resource())

    def _delete(self, checked: Checked, path: str) -> ApiAnswer:
        with self._state.lock:
            message = self._message(checked, path)
            if message.status not in FINAL_STATUSES:
                raise errors.rejected(errors.CANNOT_DELETE_YET, "Cannot delete this resource before it is complete")
            del self._state.messages[message.sid]
        return ApiAnswer(204, None)

    def _update(self, checked: Checked, path: str) -> ApiAnswer:
        """Status=canceled cancels a scheduled message; Body="" redacts a finished one's body."""
        sid = self._message(checked, path).sid
        if checked.form.get("Status") == "canceled":
            self._lifecycle.cancel(sid)
        if "Body" in checked.form:
            with self._state.lock:
                message = self._message(checked, path)
                if checked.form["Body"] != "" or message.status not in FINAL_STATUSES:
                    raise errors.bad_request(
                        errors.BAD_REQUEST,
                        "Body can only be redacted (set to an empty string) once the message is complete",
                    )
                message.body = ""
                message.date_updated = utc_now()
        with self._state.lock:
            return ApiAnswer(200, self._message(checked, path).resource())

    def _list_messages(self, checked: Checked, path: str) -> ApiAnswer:
        query = checked.query
        names = ("To", "From", "DateSent", "DateSent<", "DateSent>")
        filters = [(name, str(query[name])) for name in names if name in query]
        with self._state.lock:
            matching = [m for m in self._state.newest_first() if _matches(m, query)]
            page = _page(matching, lambda m: m.sid, Message.resource, ("messages", path, filters), query)
            return ApiAnswer(200, page)

    def _list_numbers(self, checked: Checked, path: str) -> ApiAnswer:
        query = checked.query
        names = ("Beta", "FriendlyName", "PhoneNumber", "Origin")
        filters = [(name, _query_text(query[name])) for name in names if name in query]
        wanted = str(query.get("PhoneNumber", "")).replace("*", "")
        records = [
            self._incoming_number(n)
            for n in self.config.incoming_phone_numbers
            if wanted in n.phone_number and query.get("FriendlyName", n.name) == n.name
        ]
        return ApiAnswer(200, _fixture_page(records, ("incoming_phone_numbers", path, filters), query))

    def _list_caller_ids(self, checked: Checked, path: str) -> ApiAnswer:
        query = checked.query
        filters: list[tuple[str, str]] = [(n, str(query[n])) for n in ("PhoneNumber", "FriendlyName") if n in query]
        records = [
            self._caller_id(n)
            for n in self.config.outgoing_caller_ids
            if query.get("PhoneNumber", n.phone_number) == n.phone_number
            and query.get("FriendlyName", n.name) == n.name
        ]
        return ApiAnswer(200, _fixture_page(records, ("outgoing_caller_ids", path, filters), query))

    def _incoming_number(self, number: PhoneNumber) -> dict[str, Any]:
        sid = _fixture_sid(number.phone_number)
        uri = ACCOUNT_PATH.format(account=self.config.account_sid) + f"/IncomingPhoneNumbers/{sid}"
        return {
            **self._fixture(number, sid, f"{uri}.json"),
            "address_requirements": "none",
            "api_version": API_VERSION,
            "beta": False,
            "capabilities": dict(number.capabilities),
            "origin": "twilio",
            "sms_method": "POST",
            "sms_url": self.config.inbound_webhook_url or "",
            "status": "in-use",
            "status_callback": "",
            "subresource_uris": {"assigned_add_ons": f"{uri}/AssignedAddOns.json"},
            "voice_method": "POST",
            "voice_url": None,
        }

    def _caller_id(self, number: PhoneNumber) -> dict[str, Any]:
        sid = _fixture_sid(number.phone_number)
        uri = ACCOUNT_PATH.format(account=self.config.account_sid) + f"/OutgoingCallerIds/{sid}.json"
        return self._fixture(number, sid, uri)

    def _fixture(self, number: PhoneNumber, sid: str, uri: str) -> dict[str, Any]:
        return {
            "account_sid": self.config.account_sid,
            "date_created": rfc2822(self._started),
            "date_updated": rfc2822(self._started),
            "friendly_name": number.name,
            "phone_number": number.phone_number,
            "sid": sid,
            "uri": uri,
        }


def _fixture_sid(number: str) -> str:
    """A stable sid per number, so that it stays the same between runs."""
    return "PN" + hashlib.md5(number.encode()).hexdigest()


def _query_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _page[T](
    records: list[T],
    sid: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
    where: tuple[str, str, list[tuple[str, str]]],
    query: dict[str, Any],
) -> dict[str, Any]:
    key, path, filters = where
    return page_of(
        records,
        sid=sid,
        render=render,
        key=key,
        path=path,
        filters=filters,
        page_size=query.get("PageSize"),
        page=query.get("Page"),
        token=query.get("PageToken"),
    )


def _fixture_page(
    records: list[dict[str, Any]], where: tuple[str, str, list[tuple[str, str]]], query: dict[str, Any]
) -> dict[str, Any]:
    return _page(records, lambda r: str(r["sid"]), lambda r: r, where, query)


def _sent_on(value: str) -> date:
    moment = parse_date_time(value)
    if moment is None:  # the description's format check let it through: Twilio's generic 400
        raise errors.bad_request(errors.BAD_REQUEST, f"Invalid date: {value}")
    return moment.date()


def _matches(message: Message, query: dict[str, Any]) -> bool:
    """Twilio's list filters: To and From exactly; DateSent on that day, DateSent< on or before
    it, DateSent> on or after it (a message not sent yet matches no date filter)."""
    if "To" in query and message.to != query["To"]:
        return False
    if "From" in query and message.sender != query["From"]:
        return False
    dates = {name: _sent_on(query[name]) for name in ("DateSent", "DateSent<", "DateSent>") if name in query}
    if not dates:
        return True
    if message.date_sent is None:
        return False
    sent = message.date_sent.date()
    return (
        sent == dates.get("DateSent", sent)
        and sent <= dates.get("DateSent<", sent)
        and sent >= dates.get("DateSent>", sent)
    )
