"""Exact money: Decimal in Python, integer minor units with an ISO 4217 currency in storage."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from babel.numbers import get_currency_precision, list_currencies


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def currency_exponent(currency: str) -> int:
    """Digits after the decimal point stored for a currency (CLDR data via babel)."""
    return int(get_currency_precision(currency))


def check_currency(value: Any) -> str:
    code = str(value or "").strip().upper()
    if code not in _known_currencies():
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
