"""SMS segment counting: GSM-7 vs UCS-2, single/multipart limits, and characters never split."""

from __future__ import annotations

import pytest

from storeflow.channels.sms_segments import GSM7_BASIC, GSM7_EXTENSION, SegmentInfo, count_segments, is_gsm7

EMOJI = "\U0001f600"  # 😀, a surrogate pair in UTF-16
CYRILLIC = "\u0436"  # ж, one UTF-16 unit, not GSM-7


def test_empty_text_needs_no_segment() -> None:
    assert count_segments("") == SegmentInfo("GSM-7", 0, 0)


def test_gsm_basic_set_has_128_minus_escape_characters_and_extension_has_ten() -> None:
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    "text",
    ["Hello, world!", "@£$¥èéùìòÇ\nØø\rÅå", "ΔΦΓΛΩΠΨΣΘΞ_ÆæßÉ", "¡ÄÖÑÜ§¿äöñüà", " !\"#¤%&'()*+,-./:;<=>?"],
)
def test_gsm7_texts(text: str) -> None:
    info = count_segments(text)
    assert info.encoding == "GSM-7"
    assert info.units == len(text)
    assert info.segments == 1


@pytest.mark.parametrize("text", ["ç", "á", "`", CYRILLIC, EMOJI, "\u00a0", "\x1b", "Ā"])
def test_any_non_gsm_character_makes_ucs2(text: str) -> None:
    assert not is_gsm7(text)
    assert count_segments("abc" + text).encoding == "UCS-2"


# -- GSM-7 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_boundaries(length: int, segments: int) -> None:
    assert count_segments("a" * length) == SegmentInfo("GSM-7", segments, length)


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION))
def test_extension_characters_take_two_septets(char: str) -> None:
    assert count_segments(char) == SegmentInfo("GSM-7", 1, 2)


def test_euro_sign_counts_twice_towards_the_single_segment_limit() -> None:
    assert count_segments("€" * 80) == SegmentInfo("GSM-7", 1, 160)
    assert count_segments("€" * 80 + "a") == SegmentInfo("GSM-7", 2, 161)
    assert count_segments("a" * 158 + "€") == SegmentInfo("GSM-7", 1, 160)
    assert count_segments("a" * 159 + "€") == SegmentInfo("GSM-7", 2, 161)


def test_extension_pair_is_not_split_across_parts() -> None:
    # 152 + 2 + 152 = 306 septets = 2 * 153, but the euro does not fit in the first part's last septet,
    # so the parts are 152 | 2 + 151 | 1.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text) == SegmentInfo("GSM-7", 3, 306)
    # Moved one character earlier it fits exactly: 151 + 2 | 153.
    assert count_segments("a" * 151 + "€" + "a" * 153) == SegmentInfo("GSM-7", 2, 306)


def test_all_extension_text_packs_76_per_part() -> None:
    # 153 is odd: each part holds 76 pairs (152 septets), one septet unused.
    assert count_segments("{" * 152) == SegmentInfo("GSM-7", 2, 304)
    assert count_segments("{" * 153) == SegmentInfo("GSM-7", 3, 306)


# -- UCS-2 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(length: int, segments: int) -> None:
    assert count_segments(CYRILLIC * length) == SegmentInfo("UCS-2", segments, length)


def test_gsm_characters_in_a_ucs2_text_are_one_unit_each_even_extension_ones() -> None:
    assert count_segments(CYRILLIC + "€" * 69) == SegmentInfo("UCS-2", 1, 70)
    assert count_segments(CYRILLIC + "a" * 70) == SegmentInfo("UCS-2", 2, 71)


def test_emoji_is_two_utf16_units() -> None:
    assert count_segments(EMOJI) == SegmentInfo("UCS-2", 1, 2)
    assert count_segments(EMOJI * 35) == SegmentInfo("UCS-2", 1, 70)
    assert count_segments(EMOJI * 35 + "a") == SegmentInfo("UCS-2", 2, 71)
    assert count_segments("a" * 68 + EMOJI) == SegmentInfo("UCS-2", 1, 70)
    assert count_segments("a" * 69 + EMOJI) == SegmentInfo("UCS-2", 2, 71)


def test_surrogate_pair_is_not_split_across_parts() -> None:
    # 66 + 2 + 66 = 134 units = 2 * 67, but the emoji cannot start at unit 67: 66 | 2 + 65 | 1.
    assert count_segments("a" * 66 + EMOJI + "a" * 66) == SegmentInfo("UCS-2", 3, 134)
    assert count_segments("a" * 65 + EMOJI + "a" * 67) == SegmentInfo("UCS-2", 2, 134)


def test_all_emoji_text_packs_33_per_part() -> None:
    assert count_segments(EMOJI * 66) == SegmentInfo("UCS-2", 2, 132)
    assert count_segments(EMOJI * 67) == SegmentInfo("UCS-2", 3, 134)


def test_flag_and_zwj_sequences_count_their_code_points() -> None:
    flag = "\U0001f1e7\U0001f1f7"  # 🇧🇷: two regional indicators, 4 units
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧: 3 pairs + 2 ZWJ = 8 units
    assert count_segments(flag).units == 4
    assert count_segments(family) == SegmentInfo("UCS-2", 1, 8)
