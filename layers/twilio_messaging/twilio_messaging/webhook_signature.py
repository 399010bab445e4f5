"""Twilio's webhook signatures (`X-Twilio-Signature`), checked as docs/twilio.md ("Webhook signatures") describes.

The signed string is the full URL Twilio requested, then every POST parameter name followed by
each of its values: names sorted and de-duplicated, each name's values sorted and de-duplicated.
JSON bodies are not part of the string: Twilio adds `bodySHA256` to the URL instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class SigningKeys:
    """Who may have signed: auth tokens (HMAC-SHA1) and shared keys by id (HMAC-SHA256)."""

    auth_tokens: Sequence[str] = ()
    shared_keys: dict[str, str] = field(default_factory=dict)


def signature_payload(url: str, params: Iterable[tuple[str, str]]) -> str:
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    # Python sorts str by code point, as Twilio does: "Reason" before "ReasonConferenceEnded".
    return url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))


def compute_signature(key: str, payload: str, algorithm: str = "sha1") -> str:
    digest = hmac.new(key.encode("utf-8"), payload.encode("utf-8"), algorithm).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """The URL as given, plus the same without its port, or with the scheme's default port
    when it has none: Twilio signs either form (and its SDKs' validators accept both)."""
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    prefix = f"{userinfo}@" if userinfo else ""
    try:
        port = parts.port
    except ValueError:
        return [url]
    if port is not None:
        host = hostport[: hostport.rindex(":")]
        return [url, urlunsplit(parts._replace(netloc=prefix + host))]
    default_port = DEFAULT_PORTS.get(parts.scheme.lower())
    if default_port is None or not hostport:
        return [url]
    return [url, urlunsplit(parts._replace(netloc=f"{prefix}{hostport}:{default_port}"))]


def parse_signature_settings(header: str | None) -> dict[str, str]:
    """`key=<id>,algorithm=HMAC_SHA256` as a dict (names lower-cased)."""
    settings: dict[str, str] = {}
    for part in (header or "").split(","):
        name, _, value = part.partition("=")
        if name.strip():
            settings[name.strip().lower()] = value.strip()
    return settings


def body_hash_matches(url: str, raw_body: bytes) -> bool:
    """A JSON webhook's URL carries `bodySHA256`, the hex SHA-256 of the body it came with."""
    expected = [v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True) if k == "bodySHA256"]
    if len(expected) != 1:
        return False
    actual = hashlib.sha256(raw_body).hexdigest()
    return hmac.compare_digest(actual.encode("ascii"), expected[0].lower().encode("ascii", "replace"))


def verify_signature(
    urls: Iterable[str],
    params: Sequence[tuple[str, str]],
    signature: str | None,
    keys: SigningKeys,
    *,
    signature_settings: str | None = None,
    json_body: bytes | None = None,
) -> bool:
    """True when `signature` signs one of `urls` (and `params`) with one of `keys`.

    `json_body`: the raw body of a JSON webhook, whose hash must match the URL's `bodySHA256`;
    its URL alone is signed. With a signature-settings header naming a shared key, that key and
    HMAC-SHA256 are used; an unknown key id or algorithm fails.
    """
    if not signature:
        return False
    settings = parse_signature_settings(signature_settings)
    if "key" in settings:
        secret = keys.shared_keys.get(settings["key"])
        if not secret or settings.get("algorithm", "HMAC_SHA256").upper() != "HMAC_SHA256":
            return False
        candidates: list[tuple[str, str]] = [(secret, "sha256")]
    else:
        candidates = [(token, "sha1") for token in keys.auth_tokens]
    if not candidates:
        return False

    given = signature.encode("utf-8", "replace")
    matched = False
    for url in urls:
        if json_body is not None and not body_hash_matches(url, json_body):
            continue
        for variant in url_variants(url):
            payload = signature_payload(variant, () if json_body is not None else params)
            for key, algorithm in candidates:
                # Every candidate is computed: the time taken does not tell which one matched.
                expected = compute_signature(key, payload, algorithm).encode("ascii")
                matched |= hmac.compare_digest(expected, given)
    return matched
