"""Locale-aware template filters: money, number, percent, date and datetime, formatted with babel.

The filters format for the profile's locale and time zone (the store's when the profile has none or an
unknown one). They find these settings in the template context under :data:`FORMAT_KEY`, which
:func:`storeflow.flows.templates.build_context` fills; that key is not a valid template name, so a
template cannot read or replace it.

Amounts stay exact: numbers become :class:`~decimal.Decimal` (floats through their shortest repr),
never floats. A missing value (``None`` or undefined) formats as an empty text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import Undefined, pass_context
from jinja2.runtime import Context

from storeflow.flows.localtime import load_zone
from storeflow.flows.values import as_datetime, as_decimal
from storeflow.model.money import check_currency, currency_exponent

FORMAT_KEY: Final = "storeflow:format"
"""The context key of the :class:`Formatting` of a render (not a valid template variable name)."""

DEFAULT_LOCALE: Final = "en_US"
DATE_FORMATS: Final[frozenset[str]] = frozenset({"short", "medium", "long", "full"})


@dataclass(frozen=True)
class Formatting:
    """How the filters of one render format: babel locale, time zone, and the default currency."""

    locale: Locale
    zone: ZoneInfo
    currency: str | None = None


@lru_cache(maxsize=256)
def _parse_locale(name: str) -> Locale | None:
    try:
        return Locale.parse(name.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def pick_locale(*candidates: object) -> Locale:
    """The first candidate that is a known locale (``pt_BR``, ``pt-BR``, ``id``), else en_US."""
    for name in candidates:
        if isinstance(name, str) and name.strip():
            found = _parse_locale(name)
            if found is not None:
                return found
    return Locale.parse(DEFAULT_LOCALE)


def pick_zone(*candidates: object) -> ZoneInfo:
    """The first candidate that is a known IANA time zone, else UTC."""
    for name in candidates:
        if isinstance(name, str) and name.strip():
            try:
                return load_zone(name.strip())
            except ValueError:
                continue
    return ZoneInfo("UTC")


def formatting_for(
    profile: Mapping[str, Any] | None, *, locale: str, timezone: str, currency: str | None
) -> Formatting:
    """The formatting for a profile: its locale and time zone, falling back to the store's ones."""
    profile = profile or {}
    return Formatting(
        locale=pick_locale(profile.get("locale"), locale),
        zone=pick_zone(profile.get("timezone"), timezone),
        currency=currency or None,
    )


def _formatting(context: Context) -> Formatting:
    found = context.get(FORMAT_KEY)
    return found if isinstance(found, Formatting) else Formatting(pick_locale(), pick_zone())


def _missing(value: Any) -> bool:
    return value is None or isinstance(value, Undefined)


def _amount(value: Any, filter_name: str) -> Decimal:
    amount = as_decimal(value)
    if amount is None:
        raise ValueError(f"{filter_name} needs a number, not {type(value).__name__} {str(value)[:40]!r}")
    return amount


@pass_context
def money(context: Context, amount: Any, currency: Any = None) -> str:
    """``{{ order.total | money }}``: the amount in ``currency`` (default: the order's or cart's
    currency, else the store's), e.g. ``R$ 99,90`` for pt_BR."""
    if _missing(amount):
        return ""
    fmt = _formatting(context)
    code = currency if not _missing(currency) else fmt.currency
    if code is None:
        raise ValueError("money needs a currency: none given and the record has none")
    value, cur = _amount(amount, "money"), check_currency(code)
    return _money_text(fmt.locale, cur, str(value))


@lru_cache(maxsize=4096)
def _money_text(locale: Locale, currency: str, amount: str) -> str:
    """The formatted amount, cached: babel's formatting is most of a render's cost, and prices repeat.
    Keyed by the amount's exact text, so 99.9 and 99.90 are separate entries (formatted alike).

    Digits come from ISO 4217 (``currency_exponent``), not from CLDR's display data, which shows
    some currencies without minor units (babel 2.19 gives IDR 0 digits): an amount with cents keeps
    them. Currencies paid without minor units in cash (IDR, CLP, ...) show whole amounts without
    ",00", as shops there do: Rp150.000, not Rp150.000,00; but Rp150.000,50 keeps its cents."""
    value = Decimal(amount)
    whole = value == value.to_integral_value() and _cash_digits(currency) == 0
    digits = 0 if whole else currency_exponent(currency)
    return format_currency(value, currency, format=_digits_pattern(locale, digits), locale=locale,
                           currency_digits=False)


@lru_cache(maxsize=256)
def _digits_pattern(locale: Locale, digits: int) -> str:
    """The locale's standard currency pattern with exactly ``digits`` fraction digits."""
    pattern = locale.currency_formats["standard"].pattern
    fraction = "." + "0" * digits if digits else ""
    return re.sub(r"(0)[.,]0+|(0)(?=[^0#.,]*$)", lambda m: "0" + fraction, pattern, count=1)


@lru_cache(maxsize=256)
def _cash_digits(currency: str) -> int:
    """CLDR's cash digits for a currency (the ``currency_fractions`` supplemental data)."""
    fractions = get_global("currency_fractions")
    return int(fractions.get(currency, fractions["DEFAULT"])[2])


@pass_context
def number(context: Context, value: Any) -> str:
    """``{{ order.item_count | number }}``: a number with the locale's separators."""
    if _missing(value):
        return ""
    return format_decimal(_amount(value, "number"), locale=_formatting(context).locale)


@pass_context
def percent(context: Context, value: Any) -> str:
    """``{{ 0.25 | percent }}``: ``25%`` (the value is a fraction)."""
    if _missing(value):
        return ""
    return format_percent(_amount(value, "percent"), locale=_formatting(context).locale)


def _format_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError('the format must be short, medium, long, full or a pattern such as "d MMM y"')
    return value


def _date_only(value: Any) -> dt.date | None:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _instant(value: Any, filter_name: str) -> dt.datetime:
    instant = as_datetime(value)
    if instant is None:
        raise ValueError(f"{filter_name} needs a date-time, not {type(value).__name__} {str(value)[:40]!r}")
    return instant


@pass_context
def date(context: Context, value: Any, format: Any = "medium") -> str:
    """``{{ order.placed_at | date }}``: the date in the profile's time zone. A date without a time
    (``1990-05-17``) is shown as it is, without time zone conversion."""
    if _missing(value):
        return ""
    fmt = _formatting(context)
    day = _date_only(value)
    if day is None:
        day = _instant(value, "date").astimezone(fmt.zone).date()
    return format_date(day, _format_name(format), locale=fmt.locale)


@pass_context
def datetime(context: Context, value: Any, format: Any = "medium") -> str:
    """``{{ order.placed_at | datetime }}``: the date and time in the profile's time zone (a value
    without an offset is taken as UTC)."""
    if _missing(value):
        return ""
    fmt = _formatting(context)
    instant = _instant(value, "datetime")
    return format_datetime(instant, _format_name(format), tzinfo=fmt.zone, locale=fmt.locale)


FILTERS: Final[Mapping[str, Callable[..., str]]] = MappingProxyType(
    {"money": money, "number": number, "percent": percent, "date": date, "datetime": datetime}
)
"""The storeflow filters, added to Jinja's built-in ones."""
