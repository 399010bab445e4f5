"""X-Twilio-Signature as Twilio computes it (docs/twilio.md, "Webhook signatures"): the full URL
as requested, then each parameter name in code-point order, once, followed by each of its values
in code-point order, once; HMAC-SHA1 with the auth token, base64. Written independently of the
layer and of Twilio's SDK, which the tests use as the oracle."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    payload = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
