"""Where the Twilio credentials may go, and what must never come back out (docs/twilio.md,
"Hosts and resources that hold credentials").

- Credentials travel only to Twilio's REST API hosts: `api.twilio.com`, its regional forms
  (`api.<edge>.<region>.twilio.com`) and the product APIs (`messaging.twilio.com`, …). Twilio's
  web, status and support sites and customers' SIP hosts never see them.
- The raw route never asks for a resource that hands credentials out (the Account holds its
  auth token, a new API key its secret, …), however the path is spelled.
- Any credential value in an answer (JSON at any depth, XML, plain text) is replaced, should a
  resource not on the list carry one.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit

REDACTED = "[redacted]"

# Twilio's REST products, each at <product>.twilio.com and <product>.<edge>.<region>.twilio.com.
API_PRODUCTS = frozenset(
    {
        *("api", "accounts", "assistants", "bulkexports", "chat", "content", "conversations", "events"),
        *("flex-api", "frontline-api", "iam", "insights", "intelligence", "knowledge", "lookups"),
        *("marketplace", "media", "messaging", "monitor", "notify", "numbers", "oauth", "preview"),
        *("pricing", "proxy", "routes", "serverless", "studio", "supersim", "sync", "taskrouter"),
        *("trunking", "trusthub", "verify", "video", "voice", "wireless"),
    }
)
_API_HOST = re.compile(r"^(?P<product>[a-z-]+)(?:\.[a-z][a-z-]*)?(?:\.[a-z]{2}[0-9])?\.twilio\.com\Z")
_REGIONAL = re.compile(r"^[a-z-]+(?:\.[a-z][a-z-]*)?\.[a-z]{2}[0-9]\.twilio\.com\Z")
_VERSION = re.compile(r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|v[0-9]+)\Z")

CREDENTIAL_RESOURCES = (
    "the Account and the account list, API Keys, SigningKeys, SIP CredentialLists and their Credentials, "
    "accounts.twilio.com AuthTokens and Credentials, iam.twilio.com Keys"
)
REFUSED_PROBLEM = (
    f"names a resource that holds Twilio credentials ({CREDENTIAL_RESOURCES}): "
    "refused, so that credentials never leave Twilio; manage these in Twilio's console"
)


def api_product(host: str) -> str | None:
    """The product of a Twilio REST API host (`api`, `messaging`, …), or None for any other host."""
    match = _API_HOST.match(host.lower().rstrip("."))
    if match is None or match.group("product") not in API_PRODUCTS:
        return None
    # <product>.<edge>.twilio.com without a region is no Twilio form: only the plain and regional hosts.
    host = host.lower().rstrip(".")
    if host.count(".") > 2 and not _REGIONAL.match(host):
        return None
    return match.group("product")


def fully_decoded(text: str) -> str:
    """`text` percent-decoded until stable, so that %252e%252e is seen as the `..` it may become."""
    for _ in range(5):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _segments(path: str) -> list[str]:
    """The path's segments as Twilio routes them: decoded, case-folded, without `.json`-like
    suffixes (anything from a dot on), parameters (`;x`) or empty segments, and without the leading API version."""
    segments = []
    for raw in fully_decoded(path.split("?", 1)[0]).lower().split("/"):
        segment = raw.split(";", 1)[0].split(".", 1)[0].strip()
        if segment:
            segments.append(segment)
    if segments and _VERSION.match(segments[0]):
        segments = segments[1:]
    return segments


def _holds_credentials(product: str | None, segments: list[str]) -> bool:
    head = segments[:1]
    if product == "accounts" and head in (["authtokens"], ["credentials"]):
        return True
    if product == "iam" and head == ["keys"]:
        return True
    # The 2010-04-01 API, on whatever host serves it (api.*, the configured base URL).
    if head != ["accounts"]:
        return False
    if len(segments) <= 2:
        return True  # the account list, or one account: each holds an auth token
    below = segments[2:]
    return below[0] in ("keys", "signingkeys") or below[:2] == ["sip", "credentiallists"]


def refuses(url: str) -> bool:
    """True when `url` names a resource that hands out credentials, however the path is spelled."""
    parts = urlsplit(url)
    return _holds_credentials(api_product(parts.hostname or ""), _segments(parts.path))


# --- redaction --------------------------------------------------------------------------------

_SENSITIVE_ENDINGS = ("authtoken", "secret", "signingkey", "password")
_NAME = r"[A-Za-z_][\w.:-]*"
_JSON_MEMBER = re.compile(rf'"(?P<name>{_NAME})"\s*:\s*(?P<value>"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*)', re.DOTALL)
_XML_ELEMENT = re.compile(
    rf"<(?P<name>{_NAME})(?P<attributes>\s[^<>]*)?>(?P<value>(?:[^<]|<!\[CDATA\[.*?\]\]>)*)</(?P=name)\s*>", re.DOTALL
)
_PAIR = re.compile(rf"(?P<lead>^|[\s?&;,(\[{{])(?P<name>{_NAME})\s*=\s*(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,<>\"']+)")


def is_sensitive(name: str) -> bool:
    """A field that holds a credential: auth_token, secondaryAuthToken, secret, SigningKey, password…"""
    folded = name.lower().replace("_", "").replace("-", "").rsplit(":", 1)[-1]
    return folded.endswith(_SENSITIVE_ENDINGS)


def redact_value(value: Any) -> Any:
    """A decoded JSON value with every credential replaced, at any depth."""
    if isinstance(value, dict):
        return {
            key: REDACTED if is_sensitive(str(key)) and _is_secret(item) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    return value


def _is_secret(value: Any) -> bool:
    return value is not None and not isinstance(value, bool) and value != ""


def redact_text(text: str, *, parse_json: bool = True) -> str:
    """Text (JSON, XML, form-like or anything else) with every credential value replaced."""
    try:
        decoded = json.loads(text) if parse_json else None
    except (ValueError, RecursionError):
        decoded = None
    if isinstance(decoded, dict | list):
        redacted = redact_value(decoded)
        return text if redacted == decoded else json.dumps(redacted, ensure_ascii=False)
    text = _JSON_MEMBER.sub(_replace(f'"{REDACTED}"', '"{name}": {value}'), text)
    text = _XML_ELEMENT.sub(_replace(REDACTED, "<{name}{attributes}>{value}</{name}>"), text)
    return _PAIR.sub(_replace(REDACTED, "{lead}{name}={value}"), text)


def _replace(replacement: str, shape: str) -> Any:
    def substitute(match: re.Match[str]) -> str:
        if not is_sensitive(match.group("name")):
            return match.group(0)
        groups = {k: v or "" for k, v in match.groupdict().items()}
        return shape.format(**{**groups, "value": replacement})

    return substitute


def redact_bytes(content: bytes) -> bytes:
    """Bytes with every credential value replaced; bytes that hold none come back unchanged.
    Bytes that are not UTF-8 are read as Latin-1, which maps every byte to one character and
    back, and only matched, never re-encoded as JSON."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        text = content.decode("latin-1")
        redacted = redact_text(text, parse_json=False)
        return content if redacted == text else redacted.encode("latin-1")
    redacted = redact_text(text)
    return content if redacted == text else redacted.encode("utf-8")
