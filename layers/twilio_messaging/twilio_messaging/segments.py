"""How Twilio bills a body (docs/twilio.md, "Segments"): GSM-7 fits 160 characters in one segment
and 153 per segment once split, an extension character (`€`, `[`, …) counting twice; a single
character outside GSM-7 makes the whole body UCS-2: 70 UTF-16 units, 67 once split."""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class Encoded:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int  # at least 1: a message with media or a template only is one segment too


def encode(body: str) -> Encoded:
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in body)
        encoding, single, split = "GSM-7", 160, 153
    else:
        units = len(body.encode("utf-16-le", "surrogatepass")) // 2  # an emoji takes two units
        encoding, single, split = "UCS-2", 70, 67
    return Encoded(encoding, 1 if units <= single else -(-units // split))
