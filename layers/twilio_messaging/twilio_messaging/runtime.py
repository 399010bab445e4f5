"""Objects kept for the life of an execution environment, built on first use: the credential
store (its cache) and the Twilio client (its connection pool) outlive each invocation."""

from __future__ import annotations

import threading

from twilio_messaging.credentials import CredentialStore
from twilio_messaging.settings import Settings, get_settings
from twilio_messaging.twilio_client import TwilioClient

_lock = threading.Lock()
_client: TwilioClient | None = None


def settings() -> Settings:
    return get_settings()


def twilio_client() -> TwilioClient:
    global _client
    with _lock:
        if _client is None:
            current = get_settings()
            store = CredentialStore(current.twilio_secret_id, current.secret_max_age_seconds)
            _client = TwilioClient(current.twilio_api_base_url, store)
        return _client


def reset() -> None:
    """Forget everything built so far (tests change the environment between cases)."""
    global _client
    with _lock:
        _client = None
    get_settings.cache_clear()
