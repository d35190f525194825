"""Profile resolution: find or create the profile an event is about, merging anonymous visitors
into known customers when they identify."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

from storeflow.errors import NotFoundError
from storeflow.model.events import new_id
from storeflow.model.profiles import CONSENT_STATES, IdentityHints
from storeflow.store.base import StoreTx

_STRONG = ("customer", "email", "phone")
_RANK = {"customer": 0, "email": 1, "phone": 2, "anonymous": 3}
_MAX_NAME_CHARS = 64  # time zone and locale names (the longest IANA zone name has 32)


def check_profile_updates(updates: dict[str, Any]) -> dict[str, Any]:
    """Validate the ``profile`` object of an event or identify call; returns column updates and
    properties. Raises ValueError naming the bad field."""
    out: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for key, value in updates.items():
        if key == "timezone":
            try:
                if not isinstance(value, str) or len(value) > _MAX_NAME_CHARS:
                    raise ValueError("not an IANA zone name")
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name the OS refuses
                raise ValueError(f"profile.timezone: {str(value)[:60]!r} is not an IANA time zone; "
                                 "use e.g. Asia/Jakarta") from exc
            out["timezone"] = value
        elif key == "locale":
            try:
                if not isinstance(value, str) or len(value) > _MAX_NAME_CHARS:
                    raise ValueError("not a locale name")
                out["locale"] = str(Locale.parse(value.replace("-", "_")))
            except (UnknownLocaleError, ValueError, TypeError) as exc:
                raise ValueError(f"profile.locale: {str(value)[:60]!r} is not a locale; "
                                 "use e.g. pt_BR or id_ID") from exc
        elif key == "consent":
            if not isinstance(value, dict):
                raise ValueError("profile.consent: use an object such as {\"email\": \"subscribed\"}")
            for channel, state in value.items():
                if channel not in ("email", "sms", "push") or state not in CONSENT_STATES:
                    raise ValueError(f"profile.consent.{channel}: use email/sms/push with one of "
                                     f"{', '.join(CONSENT_STATES)}")
                out[f"consent_{channel}"] = state
        elif key == "properties":
            if not isinstance(value, dict):
                raise ValueError("profile.properties: must be an object")
            props.update(value)
        elif key in ("email", "phone", "id"):
            continue  # identities come from the top-level fields
        else:
            props[key] = value
    if props:
        out["properties"] = props
    return out


def resolve_profile(tx: StoreTx, hints: IdentityHints, now: datetime) -> str | None:
    """The surviving profile id for these hints, creating or merging profiles as needed."""
    given = None
    if hints.profile_id:
        given = tx.resolve_profile_id(hints.profile_id)
        if given is None:
            raise NotFoundError(f"profile {hints.profile_id} does not exist")
    idents = hints.identities()
    if not idents:
        return given
    found = tx.find_profiles_by_identities(idents)
    owners: dict[tuple[str, str], str] = {}
    for ident, pid in found.items():
        resolved = tx.resolve_profile_id(pid)
        if resolved:
            owners[ident] = resolved
    if given is None and not owners:
        pid = new_id("prof")
        tx.create_profile(pid, now, email=hints.email, phone=hints.phone)
        tx.add_identities(pid, idents, now)
        return pid
    survivor = given or min(owners.items(), key=lambda kv: _RANK[kv[0][0]])[1]
    survivor_kinds = _strong_kinds(tx, survivor)
    for _ident, pid in sorted(owners.items(), key=lambda kv: _RANK[kv[0][0]]):
        if pid == survivor:
            continue
        other_kinds = _strong_kinds(tx, pid)
        if other_kinds & survivor_kinds:
            continue  # two different known customers: never merged automatically
        tx.merge_profiles(survivor, pid, now)  # e.g. an anonymous visitor identifies
        survivor_kinds |= other_kinds
    missing = [i for i in idents if i not in owners and not (i[0] in _STRONG and i[0] in survivor_kinds)]
    tx.add_identities(survivor, missing, now)
    fill: dict[str, Any] = {}
    profile = tx.get_profile(survivor) or {}
    if hints.email and not profile.get("email") and ("email", hints.email) in missing:
        fill["email"] = hints.email
    if hints.phone and not profile.get("phone") and ("phone", hints.phone) in missing:
        fill["phone"] = hints.phone
    if fill:
        tx.update_profile(survivor, now, **fill)
    return survivor


def _strong_kinds(tx: StoreTx, profile_id: str) -> set[str]:
    return {kind for kind, _ in tx.identities_of(profile_id) if kind in _STRONG}


def apply_profile_updates(tx: StoreTx, profile_id: str, updates: dict[str, Any], now: datetime) -> None:
    if not updates:
        return
    values = dict(updates)
    patch = values.pop("properties", None)
    if patch:  # only the keys given: merged into the row as it is when written, not as read before
        tx.merge_properties(profile_id, patch, now)
    if values:
        tx.update_profile(profile_id, now, **values)
