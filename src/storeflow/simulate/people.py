"""Seeded demo customers: names from small per-locale lists, emails, E.164 phones, time zones.

Locales are ``pt_BR``, ``id_ID`` and ``en_US``; the store's currency decides the mix (a rupiah shop
sells mostly to Indonesians, with some customers from elsewhere). Each customer's phone is a valid
mobile number for their country (US numbers are in the fictional 555-01XX range) and their time zone
is one of their country's.

No message ever reaches these people: email addresses use domains reserved for examples (the
``.example`` top-level domain and ``example.com``/``.net``/``.org``, RFC 2606).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

import phonenumbers

LOCALES: Final = ("pt_BR", "id_ID", "en_US")
COUNTRY: Final = {"pt_BR": "BR", "id_ID": "ID", "en_US": "US"}
LOCALE_MIX: Final = {
    "IDR": {"id_ID": 85, "en_US": 10, "pt_BR": 5},
    "BRL": {"pt_BR": 88, "en_US": 8, "id_ID": 4},
    "USD": {"en_US": 82, "pt_BR": 10, "id_ID": 8},
}
CONSENT_MIX: Final = {"subscribed": 82, "unsubscribed": 8, "never_asked": 10}
PROSPECT_SHARE: Final = 0.04

FIRST_NAMES: Final = {
    "pt_BR": ("Ana", "Maria", "Juliana", "Fernanda", "Camila", "Beatriz", "Larissa", "Mariana", "Aline",
              "Patrícia", "Letícia", "Gabriela", "Rafaela", "Luana", "Bruna", "Carolina", "Isabela", "Vitória",
              "Júlia", "Helena", "João", "Pedro", "Lucas", "Gabriel", "Rafael", "Mateus", "Gustavo", "Felipe",
              "Thiago", "Bruno", "Rodrigo", "Leonardo", "André", "Diego", "Vinícius", "Caio", "Renato",
              "Eduardo", "Guilherme", "Marcelo"),
    "id_ID": ("Siti", "Dewi", "Sri", "Putri", "Ayu", "Rina", "Lestari", "Wulan", "Indah", "Ratna", "Fitri",
              "Nur", "Intan", "Maya", "Citra", "Anisa", "Nadia", "Sinta", "Kartika", "Melati", "Budi", "Agus",
              "Dwi", "Eko", "Joko", "Rizky", "Andi", "Fajar", "Hendra", "Yusuf", "Arief", "Bayu", "Dimas",
              "Gilang", "Ilham", "Rudi", "Wahyu", "Adi", "Reza", "Teguh"),
    "en_US": ("Emily", "Sarah", "Jessica", "Ashley", "Jennifer", "Amanda", "Megan", "Lauren", "Rachel",
              "Hannah", "Olivia", "Emma", "Sophia", "Chloe", "Grace", "Maya", "Nicole", "Keisha", "Sofia",
              "Abigail", "James", "John", "Michael", "David", "Daniel", "Matthew", "Chris", "Andrew", "Ryan",
              "Kevin", "Brian", "Tyler", "Jason", "Justin", "Eric", "Marcus", "Luis", "Carlos", "Ethan",
              "Noah"),
}
LAST_NAMES: Final = {
    "pt_BR": ("Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
              "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes",
              "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade", "Moreira", "Nunes", "Marques",
              "Machado", "Mendes", "Freitas", "Cardoso", "Ramos", "Gonçalves", "Araújo", "Teixeira"),
    "id_ID": ("Santoso", "Wijaya", "Pratama", "Saputra", "Hidayat", "Kusuma", "Nugroho", "Rahayu", "Setiawan",
              "Wibowo", "Susanto", "Gunawan", "Kurniawan", "Purnomo", "Permana", "Hakim", "Siregar", "Nasution",
              "Simanjuntak", "Lubis", "Harahap", "Halim", "Tanjung", "Firmansyah", "Hartono", "Utami", "Sari",
              "Anggraini", "Putra", "Ramadhan", "Syahputra", "Maulana"),
    "en_US": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
              "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
              "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young",
              "Allen", "King", "Wright", "Nguyen", "Kim", "Patel", "Chen"),
}
EMAIL_DOMAINS: Final = {
    "pt_BR": ("correio.example", "caixa.example", "example.com", "example.net"),
    "id_ID": ("surel.example", "posku.example", "example.com", "example.org"),
    "en_US": ("mail.example", "inbox.example", "example.com", "example.net"),
}
# Time zone -> (weight, Brazilian area codes) or US area codes; Indonesian mobiles are national.
TIME_ZONES: Final[dict[str, dict[str, tuple[int, tuple[int, ...]]]]] = {
    "pt_BR": {
        "America/Sao_Paulo": (62, (11, 12, 13, 15, 19, 21, 24, 27, 31, 34, 41, 43, 47, 48, 51, 54, 61, 62)),
        "America/Bahia": (8, (71, 73, 75, 77)),
        "America/Fortaleza": (9, (85, 88, 86, 98)),
        "America/Recife": (8, (81, 87, 83, 84)),
        "America/Belem": (5, (91, 93, 94)),
        "America/Manaus": (5, (92, 97)),
        "America/Cuiaba": (3, (65, 66)),
    },
    "id_ID": {
        "Asia/Jakarta": (70, ()),
        "Asia/Makassar": (20, ()),
        "Asia/Pontianak": (5, ()),
        "Asia/Jayapura": (5, ()),
    },
    "en_US": {
        "America/New_York": (46, (212, 646, 718, 917, 347, 617, 857, 305, 786, 404, 678, 215, 267, 202, 410,
                                  704, 919, 313)),
        "America/Chicago": (28, (312, 773, 872, 214, 469, 713, 832, 512, 737, 612, 414, 504, 615)),
        "America/Denver": (8, (303, 720, 801, 385, 505)),
        "America/Los_Angeles": (18, (213, 323, 310, 424, 415, 628, 206, 503, 971, 619, 702)),
    },
}
# Indonesian mobile prefixes (after +62): Telkomsel, Indosat, XL, Tri, Smartfren.
_ID_PREFIXES: Final = ("811", "812", "813", "821", "822", "823", "852", "853", "814", "815", "816", "855", "856",
                       "857", "858", "817", "818", "819", "859", "877", "878", "895", "896", "897", "898", "881",
                       "882", "887")


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str  # the shop's customer id, e.g. "c00042"
    first_name: str
    last_name: str
    email: str
    phone: str  # E.164
    locale: str
    country: str
    timezone: str
    email_consent: str  # subscribed | unsubscribed | never_asked
    activity: float  # how often they visit, relative to the others
    prospect: bool  # not a customer yet: browses anonymously, then subscribes during the period

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def profile_fields(self) -> dict[str, Any]:
        """The ``profile`` object of the first event that names this customer."""
        return {"first_name": self.first_name, "last_name": self.last_name, "locale": self.locale,
                "timezone": self.timezone, "country": self.country,
                "consent": {"email": self.email_consent}}


def ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def _weighted(rng: random.Random, table: dict[str, int]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def _email_local(first: str, last: str, rng: random.Random) -> str:
    f, last_ = ascii_fold(first), ascii_fold(last)
    style = rng.randrange(7)
    number = rng.randint(1, 99)
    if style == 0:
        return f"{f}.{last_}"
    if style == 1:
        return f"{f}{last_}"
    if style == 2:
        return f"{f}_{last_}"
    if style == 3:
        return f"{f}.{last_}{number}"
    if style == 4:
        return f"{f[0]}.{last_}"
    if style == 5:
        return f"{f}{last_[0]}{number}"
    return f"{f}{rng.randint(70, 99) if rng.random() < 0.5 else rng.randint(0, 9)}"


class _Phones:
    """Unique, valid mobile numbers per country."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.us_pool: dict[int, list[int]] = {}

    def _valid(self, candidate: str) -> str | None:
        """``candidate`` is ``+<country code><national number>`` (digits only, no leading zero), so it
        is already in E.164 form: checked without parsing the text (3 times faster, same answers)."""
        if candidate in self.used:
            return None
        code = 1 if candidate.startswith("+1") else int(candidate[1:3])
        number = phonenumbers.PhoneNumber(country_code=code, national_number=int(candidate[len(str(code)) + 1:]))
        return candidate if phonenumbers.is_valid_number(number) else None

    def make(self, locale: str, area_codes: tuple[int, ...]) -> str:
        rng = self.rng
        for _ in range(500):
            if locale == "pt_BR":
                candidate = f"+55{rng.choice(area_codes)}9{rng.randint(6, 9)}{rng.randint(0, 9_999_999):07d}"
            elif locale == "id_ID":
                digits = rng.choice((7, 8))
                candidate = f"+62{rng.choice(_ID_PREFIXES)}{rng.randint(0, 10 ** digits - 1):0{digits}d}"
            else:
                candidate = self._us(area_codes)
            number = self._valid(candidate)
            if number is not None:
                self.used.add(number)
                return number
        raise RuntimeError(f"could not find an unused phone number for {locale}")  # pragma: no cover

    def _us(self, area_codes: tuple[int, ...]) -> str:
        """The fictional 555-0100..0199 block; a real-looking exchange only when it runs out."""
        rng = self.rng
        open_codes = [a for a in area_codes if self.us_pool.get(a) != []]
        if open_codes:
            area = rng.choice(open_codes)
            pool = self.us_pool.setdefault(area, list(range(100, 200)))
            line = pool.pop(rng.randrange(len(pool)))
            return f"+1{area}5550{line:03d}"
        return f"+1{rng.choice(area_codes)}{rng.randint(2, 9)}{rng.randint(10, 99)}{rng.randint(0, 9999):04d}"


def build_people(seed: int = 7, currency: str = "USD", count: int = 3000) -> tuple[Customer, ...]:
    """``count`` customers for a store selling in ``currency`` (which sets the locale mix)."""
    mix = LOCALE_MIX.get(currency.upper())
    if mix is None:
        raise ValueError(f"{currency!r} is not a demo currency; use one of {', '.join(LOCALE_MIX)}")
    if count < 1:
        raise ValueError("the demo needs at least one customer")
    rng = random.Random(f"people:{seed}:{currency.upper()}")
    phones = _Phones(random.Random(f"phones:{seed}:{currency.upper()}"))
    emails: set[str] = set()
    out: list[Customer] = []
    for index in range(count):
        locale = _weighted(rng, mix)
        first = rng.choice(FIRST_NAMES[locale])
        last = rng.choice(LAST_NAMES[locale])
        zones = TIME_ZONES[locale]
        tz = rng.choices(list(zones), weights=[w for w, _ in zones.values()])[0]
        domains = EMAIL_DOMAINS[locale]
        email = ""
        for attempt in range(50):
            local = _email_local(first, last, rng)
            if attempt:
                local = f"{local}{rng.randint(1, 999)}"
            email = f"{local}@{rng.choice(domains)}"
            if email not in emails:
                break
        emails.add(email)
        prospect = rng.random() < PROSPECT_SHARE
        out.append(Customer(
            customer_id=f"c{index + 1:05d}",
            first_name=first,
            last_name=last,
            email=email,
            phone=phones.make(locale, zones[tz][1]),
            locale=locale,
            country=COUNTRY[locale],
            timezone=tz,
            email_consent="subscribed" if prospect else _weighted(rng, CONSENT_MIX),
            activity=round(rng.lognormvariate(0.0, 0.8), 4),
            prospect=prospect,
        ))
    return tuple(out)
