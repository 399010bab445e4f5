"""Shared layer of the Twilio messaging functions: settings, credentials, the Twilio client,
models, errors, invocation adapters and observability. Nothing here knows a handler."""
