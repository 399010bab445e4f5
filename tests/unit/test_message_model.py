from tests.support import twilio_message
from twilio_messaging.message_model import normalize_message
from twilio_messaging.values import iso_utc


def test_rfc2822_dates_become_iso_utc() -> None:
    assert iso_utc("Thu, 30 Jul 2015 20:12:31 +0000") == "2015-07-30T20:12:31Z"
    assert iso_utc("Thu, 30 Jul 2015 22:12:31 +0200") == "2015-07-30T20:12:31Z"
    assert iso_utc("2015-07-30T20:12:31-01:00") == "2015-07-30T21:12:31Z"
    assert iso_utc(None) is None and iso_utc("") is None


def test_counts_become_ints_and_codes_ints() -> None:
    message = normalize_message(twilio_message(num_segments="3", num_media="2", error_code="30007", price="-0.00750"))
    assert (message["numSegments"], message["numMedia"], message["errorCode"]) == (3, 2, 30007)
    assert message["price"] == "-0.00750"


def test_shape_is_the_contract() -> None:
    message = normalize_message(twilio_message())
    assert list(message) == [
        "sid", "accountSid", "messagingServiceSid", "from", "to", "body", "status", "direction", "numSegments",
        "numMedia", "price", "priceUnit", "errorCode", "errorMessage", "dateCreated", "dateSent", "dateUpdated",
        "apiVersion", "uri",
    ]  # fmt: skip
    assert message["dateSent"] is None and message["errorCode"] is None
    assert message["dateCreated"] == "2015-07-30T20:12:31Z"
