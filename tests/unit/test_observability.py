import io
import json
import logging

from twilio_messaging.observability import logger, mask_phone_numbers


def test_masks_e164_and_channel_addresses() -> None:
    assert mask_phone_numbers("to +15558675310 and whatsapp:+447700900123") == "to +***5310 and whatsapp:+***0123"
    assert mask_phone_numbers({"a": ["+15558675310"], "n": 5}) == {"a": ["+***5310"], "n": 5}
    assert mask_phone_numbers("code 21211, sid SM0123") == "code 21211, sid SM0123"
    assert mask_phone_numbers("/v2/PhoneNumbers/%2B15558675310") == "/v2/PhoneNumbers/%2B***5310"
    assert mask_phone_numbers("whatsapp:15558675310") == "whatsapp:***5310"


def test_log_lines_never_show_a_full_number() -> None:
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        logger.info("Sending to +15558675310", extra={"recipient": "+15558675311"})
    finally:
        handler.setStream(previous)
    line = json.loads(buffer.getvalue())
    assert line["message"] == "Sending to +***5310" and line["recipient"] == "+***5311"
