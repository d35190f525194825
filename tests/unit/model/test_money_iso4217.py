"""Minor units are ISO 4217's, whatever CLDR's display data (babel) says.

babel 2.19 reports 0 digits for IDR (display data: rupiah are shown whole), which made
``150000.50 IDR`` invalid and stored ``150000`` where ``150000.00`` was meant.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from babel import Locale

from storeflow.flows.formatting import _money_text
from storeflow.model.money import Money, check_currency, currency_exponent, from_minor, to_minor


@pytest.mark.parametrize(("code", "digits"), [("IDR", 2), ("HUF", 2), ("BRL", 2), ("USD", 2), ("JPY", 0),
                                             ("CLP", 0), ("BHD", 3), ("KWD", 3)])
def test_exponent_is_the_iso_4217_minor_unit(code: str, digits: int) -> None:
    assert currency_exponent(code) == digits


def test_rupiah_and_forint_amounts_with_cents_are_exact() -> None:
    assert to_minor(Decimal("150000.50"), "IDR") == 15000050
    assert from_minor(15000000, "IDR") == Decimal("150000.00")
    assert str(from_minor(15000000, "IDR")) == "150000.00"
    assert Money.parse("1990.50", "HUF").minor == 199050


def test_finer_than_the_minor_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="more than 0 decimal places for JPY"):
        to_minor(Decimal("10.5"), "JPY")


@pytest.mark.parametrize("code", ["XAU", "XXX", "ABC", ""])
def test_codes_without_minor_units_or_unknown_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        check_currency(code)


def test_display_keeps_cents_but_shows_whole_rupiah_whole() -> None:
    id_id = Locale.parse("id_ID")
    assert _money_text(id_id, "IDR", "150000") == "Rp150.000"
    assert _money_text(id_id, "IDR", "150000.50") == "Rp150.000,50"
    assert _money_text(Locale.parse("en_US"), "BHD", "1.5") == "BHD1.500"
    assert _money_text(Locale.parse("pt_BR"), "BRL", "99.9") == "R$\xa099,90"
