"""Demo customers: seeded, realistic per locale, valid E.164 phones, reserved email domains."""

from __future__ import annotations

from collections import Counter
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from storeflow.model.profiles import normalize_email, normalize_phone
from storeflow.simulate.people import COUNTRY, FIRST_NAMES, LAST_NAMES, TIME_ZONES, build_people


def test_same_seed_same_people() -> None:
    assert build_people(7, "BRL", 500) == build_people(7, "BRL", 500)
    assert build_people(7, "BRL", 500) != build_people(9, "BRL", 500)


@pytest.mark.parametrize(("currency", "main"), [("IDR", "id_ID"), ("BRL", "pt_BR"), ("USD", "en_US")])
def test_the_currency_sets_the_locale_mix(currency: str, main: str) -> None:
    people = build_people(7, currency, 2000)
    locales = Counter(p.locale for p in people)
    assert locales.most_common(1)[0][0] == main
    assert locales[main] > 0.75 * len(people)
    assert set(locales) == {"pt_BR", "id_ID", "en_US"}


@pytest.mark.parametrize("currency", ["IDR", "BRL", "USD"])
def test_phones_are_valid_e164_mobiles_of_the_customers_country(currency: str) -> None:
    people = build_people(11, currency, 1500)
    assert len({p.phone for p in people}) == len(people)
    for p in people:
        parsed = phonenumbers.parse(p.phone, None)
        assert phonenumbers.is_valid_number(parsed), p.phone
        assert phonenumbers.region_code_for_number(parsed) == COUNTRY[p.locale] == p.country
        assert phonenumbers.number_type(parsed) in (phonenumbers.PhoneNumberType.MOBILE,
                                                    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
        assert normalize_phone(p.phone) == p.phone  # already E.164, as the engine stores it


def test_us_numbers_use_the_fictional_555_01xx_block() -> None:
    us = [p for p in build_people(7, "USD", 800) if p.locale == "en_US"]
    assert us
    assert all(p.phone[5:9] == "5550" and 100 <= int(p.phone[9:]) <= 199 for p in us)


def test_names_emails_time_zones_and_consent() -> None:
    people = build_people(7, "IDR", 3000)
    assert len({p.email for p in people}) == len(people)
    assert len({p.customer_id for p in people}) == len(people)
    for p in people:
        assert p.first_name in FIRST_NAMES[p.locale] and p.last_name in LAST_NAMES[p.locale]
        assert normalize_email(p.email) == p.email and p.email.isascii()
        domain = p.email.rsplit("@", 1)[1]
        assert domain.endswith((".example", "example.com", "example.net", "example.org"))  # reserved (RFC 2606)
        assert p.timezone in TIME_ZONES[p.locale]
        ZoneInfo(p.timezone)
        assert p.activity > 0
    consent = Counter(p.email_consent for p in people)
    assert consent["subscribed"] > 0.7 * len(people)
    assert consent["unsubscribed"] > 0 and consent["never_asked"] > 0
    assert 0 < sum(p.prospect for p in people) < 0.1 * len(people)
    assert all(p.email_consent == "subscribed" for p in people if p.prospect)
    fields = people[0].profile_fields()
    assert fields["consent"] == {"email": people[0].email_consent}
    assert fields["timezone"] == people[0].timezone and fields["locale"] == people[0].locale
