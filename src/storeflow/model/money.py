"""Exact money: Decimal in Python, integer minor units with an ISO 4217 currency in storage."""

from __future__ import annotations

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


def parse_amount(value: Any) -> Decimal:
    """An amount from JSON: a number or numeric string, kept exact."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not an amount; use a number such as 19.90 or \"19.90\"")
    if isinstance(value, float):
        value = repr(value)  # shortest repr round-trips: 19.9 -> "19.9", no binary noise
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not an amount; use a number such as 19.90 or \"19.90\"") from exc
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
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
