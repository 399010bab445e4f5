"""How many segments a body takes (docs/twilio.md, "Sending a message"): GSM-7 fits 160
characters in one segment and 153 per segment when split (an extension character such as `€`
counts twice); one character outside GSM-7 makes the whole body UCS-2, 70 and 67 UTF-16 units."""

from __future__ import annotations

# The GSM 03.38 basic character set and its extension table (each extension character is sent
# as an escape and the character: two septets).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def is_gsm7(body: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body)


def segment_count(body: str) -> int:
    """At least 1: a message with media only is one segment too."""
    if is_gsm7(body):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in body)
        single, split = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2  # UTF-16 code units: an emoji takes two
        single, split = 70, 67
    if units <= single:
        return 1
    return -(-units // split)
