"""Exact money: Decimal in Python, integer minor units with an ISO 4217 currency in storage."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from iso4217 import Currency


@cache
def _iso_exponents() -> dict[str, int]:
    """Active ISO 4217 codes with their minor unit. Codes without one (gold, SDR, testing codes:
    "N.A." in the standard) are not money storeflow can store."""
    return {c.code: int(c.exponent) for c in Currency if c.exponent is not None}


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point a currency has: its ISO 4217 minor unit (IDR 2, JPY 0, BHD 3).

    This is the standard's fact, not display data: CLDR (babel) shows rupiah without cents, but an
    amount such as ``150000.50 IDR`` is valid and kept exact. Formatting stays with babel."""
    try:
        return _iso_exponents()[currency]
    except KeyError:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency with minor units; use e.g. USD, IDR or BRL") \
            from None


def check_currency(value: Any) -> str:
    code = str(value or "").strip().upper()
    if code not in _iso_exponents():
        raise ValueError(f"{value!r} is not an ISO 4217 currency code; use e.g. USD, IDR or BRL")
    return code


MAX_AMOUNT_DIGITS = 14
"""Digits before the decimal point an amount may have: below 10^14 in major units, so that its minor
units (at most 4 decimals in ISO 4217) fit a 64-bit integer column with room to spare."""
MAX_AMOUNT_DECIMALS = 20
_MAX_AMOUNT_CHARS = 50
_NOT_AN_AMOUNT = "is not an amount; use a number such as 19.90 or \"19.90\""


def parse_amount(value: Any) -> Decimal:
    """An amount from JSON: a number or numeric string, kept exact.

    Bounded before anything large is built: at most 50 characters of text, fewer than
    ``MAX_AMOUNT_DIGITS`` digits before the point, at most ``MAX_AMOUNT_DECIMALS`` after it, finite.
    ``"1e1000000"`` is refused from its exponent, without building the number it names.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} {_NOT_AN_AMOUNT}")
    if isinstance(value, int):
        if -(10**MAX_AMOUNT_DIGITS) < value < 10**MAX_AMOUNT_DIGITS:
            return Decimal(value)
        raise ValueError(f"an amount must be below 10^{MAX_AMOUNT_DIGITS} (got a {len(str(abs(value)))}-digit "
                         "number)" if value.bit_length() < 10_000 else
                         f"an amount must be below 10^{MAX_AMOUNT_DIGITS}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite amount")
        value = repr(value)  # shortest repr round-trips: 19.9 -> "19.9", no binary noise
    if not isinstance(value, str | Decimal):
        raise ValueError(f"a {type(value).__name__} {_NOT_AN_AMOUNT}")
    text = str(value).strip()
    if len(text) > _MAX_AMOUNT_CHARS:
        raise ValueError(f"{text[:20]!r}... {_NOT_AN_AMOUNT} (longer than {_MAX_AMOUNT_CHARS} characters)")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} {_NOT_AN_AMOUNT}") from exc
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    if amount and amount.adjusted() >= MAX_AMOUNT_DIGITS:
        raise ValueError(f"{value!r} is too large: an amount must be below 10^{MAX_AMOUNT_DIGITS}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_AMOUNT_DECIMALS:
        raise ValueError(f"{value!r} has more than {MAX_AMOUNT_DECIMALS} decimal places")
    if not amount and isinstance(exponent, int) and exponent > 0:
        return Decimal(0)  # "0e999999": zero, without the exponent
    return amount


def to_minor(amount: Decimal, currency: str) -> int:
    """Decimal to integer minor units; refuses amounts finer than the currency allows."""
    exp = currency_exponent(currency)
    scaled = amount.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {exp} decimal places for {currency}")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    exp = currency_exponent(currency)
    return Decimal(minor).scaleb(-exp)


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def parse(cls, amount: Any, currency: Any) -> Money:
        cur = check_currency(currency)
        value = parse_amount(amount)
        to_minor(value, cur)  # validates precision
        return cls(value, cur)

    @property
    def minor(self) -> int:
        return to_minor(self.amount, self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
