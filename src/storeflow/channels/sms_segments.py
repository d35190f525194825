"""How many SMS segments a text needs, and in which encoding (pure; no I/O).

A text that only uses the GSM 03.38 default alphabet (the basic set plus the extension table) is sent
as GSM-7: each basic character is one septet, each extension character (``^ { } \\ [ ~ ] | €`` and form
feed) is an escape plus a septet, so two. Any other character makes the whole text UCS-2, counted in
UTF-16 code units (a character outside the Basic Multilingual Plane, such as most emoji, is a
surrogate pair: two units).

A single segment holds 160 septets (GSM-7) or 70 units (UCS-2). A longer text is sent as a
concatenated message whose parts each lose room to the user data header: 153 septets or 67 units per
part. Parts are filled in order, and an extension character's two septets or a surrogate pair's two
units are never split across parts, so a part may end one short of its capacity.

The basic set follows the Unicode consortium's GSM0338 mapping, so position 0x09 is ``Ç`` (capital);
a lower-case ``ç`` is not GSM-7 and makes the text UCS-2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_SINGLE_SEPTETS = 160
GSM7_PART_SEPTETS = 153
UCS2_SINGLE_UNITS = 70
UCS2_PART_UNITS = 67

# GSM 03.38 default alphabet, row by row (0x00-0x7F), without the escape at 0x1B.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039eÆæßÉ"  # Δ _ Φ Γ Λ Ω Π Ψ Σ Θ Ξ Æ æ ß É
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape (0x1B), so two septets each.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


@dataclass(frozen=True)
class SegmentInfo:
    """``units`` are septets for GSM-7 and UTF-16 code units for UCS-2; an empty text has 0 segments."""

    encoding: Encoding
    segments: int
    units: int


def is_gsm7(text: str) -> bool:
    """True if every character of ``text`` is in the GSM 03.38 basic set or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def count_segments(text: str) -> SegmentInfo:
    """The encoding, segment count and total units for sending ``text`` as one (possibly long) SMS."""
    if is_gsm7(text):
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return SegmentInfo("GSM-7", _segments(sizes, GSM7_SINGLE_SEPTETS, GSM7_PART_SEPTETS), sum(sizes))
    sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SegmentInfo("UCS-2", _segments(sizes, UCS2_SINGLE_UNITS, UCS2_PART_UNITS), sum(sizes))


def _segments(sizes: Iterable[int], single: int, part: int) -> int:
    """Parts needed for characters of the given sizes, never splitting one character across parts."""
    sizes = list(sizes)
    total = sum(sizes)
    if total == 0:
        return 0
    if total <= single:
        return 1
    parts, used = 1, 0
    for size in sizes:
        if used + size > part:
            parts += 1
            used = 0
        used += size
    return parts
