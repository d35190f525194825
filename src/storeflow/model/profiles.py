"""Profile identities and consent."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

CHANNELS = ("email", "sms", "push")
CONSENT_STATES = ("subscribed", "unsubscribed", "never_asked")


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    local, sep, domain = email.partition("@")
    if not sep or not local or "." not in domain or " " in email:
        raise ValueError(f"{value!r} is not an email address")
    return email


def normalize_phone(value: str, default_region: str = "US") -> str:
    """A phone number in E.164, or ValueError naming why it is not one."""
    try:
        parsed = phonenumbers.parse(value, None if value.strip().startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not a phone number ({exc})") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{value!r} is not a valid phone number; use E.164 such as +5511987654321")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class IdentityHints:
    """What an event or identify call tells us about who it is about."""

    profile_id: str | None = None
    email: str | None = None
    phone: str | None = None
    customer_id: str | None = None  # external id, qualified by source: "shopify:123"
    anonymous_id: str | None = None

    def identities(self) -> list[tuple[str, str]]:
        """(kind, value) pairs, strongest first."""
        out: list[tuple[str, str]] = []
        if self.customer_id:
            out.append(("customer", self.customer_id))
        if self.email:
            out.append(("email", self.email))
        if self.phone:
            out.append(("phone", self.phone))
        if self.anonymous_id:
            out.append(("anonymous", self.anonymous_id))
        return out

    @property
    def empty(self) -> bool:
        return not (self.profile_id or self.identities())
