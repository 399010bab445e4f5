import json
from datetime import UTC, datetime

from twilio_messaging.twilio_errors import parse_error_body, parse_retry_after


def test_classic_error_body() -> None:
    body = {
        "code": 21211,
        "message": "The 'To' number is not valid.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    parsed = parse_error_body(400, json.dumps(body).encode())
    assert (parsed.code, parsed.message, parsed.more_info) == (21211, body["message"], body["more_info"])


def test_problem_details_body() -> None:
    body = {
        "type": "https://www.twilio.com/docs/errors/20404",
        "title": "Not Found",
        "status": 404,
        "code": 20404,
        "detail": "No such service",
    }
    parsed = parse_error_body(404, json.dumps(body).encode())
    assert (parsed.code, parsed.message, parsed.more_info) == (20404, "No such service", body["type"])


def test_errors_list_body() -> None:
    body = {"errors": [{"code": 60200, "message": "Invalid parameter"}]}
    parsed = parse_error_body(400, json.dumps(body).encode())
    assert (parsed.code, parsed.message) == (60200, "Invalid parameter")


def test_non_json_body() -> None:
    parsed = parse_error_body(502, b"<html>Bad gateway</html>")
    assert parsed.code is None and "502" in parsed.message


def test_retry_after_seconds_and_date() -> None:
    assert parse_retry_after("2") == 2.0
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 22 Nov 2026 12:00:05 GMT", now=now) == 5.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_retry_after_that_is_not_a_finite_number_is_ignored() -> None:
    assert parse_retry_after("inf") is None and parse_retry_after("nan") is None
