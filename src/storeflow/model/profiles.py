"""Profile identities and consent."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

CHANNELS = ("email", "sms", "push")
CONSENT_STATES = ("subscribed", "unsubscribed", "never_asked")


_LOCAL_SPECIALS = frozenset('()<>[]:;,\\"@ ')


def normalize_email(value: str) -> str:
    """The address lower-cased, or ValueError saying what is wrong with it.

    A cheap structural check (no regular expression, no DNS): one ``@``; a local part of 1-64
    printable characters without spaces, quotes or brackets, not starting or ending with a dot and
    without ``..``; a domain of at least two labels of letters, digits and inner hyphens (non-ASCII
    letters allowed), each 1-63 characters; 254 characters at most in all.
    """
    email = value.strip().lower()
    problem = _email_problem(email)
    if problem:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ValueError(f"{shown!r} is not an email address ({problem}); use e.g. ana@example.com")
    return email


def _email_problem(email: str) -> str | None:
    if len(email) > 254:
        return "longer than 254 characters"
    if not email.isprintable():
        return "it contains a control character or invalid text"
    local, sep, domain = email.partition("@")
    if not sep or not local or not domain:
        return "it needs a name, an @ and a domain"
    if len(local) > 64:
        return "the part before @ is longer than 64 characters"
    if local[0] == "." or local[-1] == "." or ".." in local or not _LOCAL_SPECIALS.isdisjoint(local):
        return "the part before @ has a misplaced dot, a space, a second @ or a quote"
    labels = domain.split(".")
    if len(labels) < 2:
        return "the domain needs a dot, as in example.com"
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-" \
                or not label.replace("-", "").isalnum():
            return f"the domain {domain!r} is not a valid host name"
    if labels[-1].isdigit():
        return f"the domain {domain!r} is not a valid host name"
    return None


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
