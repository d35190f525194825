"""The lifecycle stage written on the profile: property ``lifecycle_stage``, for message templates
(``{{ profile.lifecycle_stage }}``) and flow conditions.

The stages are the built-in lifecycle segments (segments/templates/lifecycle-*.yaml). A profile can
be in several of them (a repeat customer may also be loyal, a VIP and at risk); its stage is the most
advanced one it is in, in this order from the most advanced::

    lapsed > at_risk > vip > loyal > repeat_customer > first_time_buyer > subscriber

and None (the property set to null) when it is in none. The membership engine calls
:func:`write_lifecycle_stages` in the transaction that changed memberships, with the profiles whose
membership of a lifecycle segment (:func:`is_lifecycle_segment`) changed; the stage is written only
when it differs from the stored one. A store that has not installed the lifecycle templates never
gets the property.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Final

from storeflow.store.base import StoreTx

STAGE_PROPERTY: Final = "lifecycle_stage"
"""The profile property holding the stage."""

STAGES: Final[tuple[tuple[str, str], ...]] = (
    ("lifecycle-lapsed", "lapsed"),
    ("lifecycle-at-risk", "at_risk"),
    ("lifecycle-vip", "vip"),
    ("lifecycle-loyal", "loyal"),
    ("lifecycle-repeat-customer", "repeat_customer"),
    ("lifecycle-first-time-buyer", "first_time_buyer"),
    ("lifecycle-subscriber", "subscriber"),
)
"""(segment id, stage) from the most advanced stage to the least."""

LIFECYCLE_SEGMENTS: Final[frozenset[str]] = frozenset(segment for segment, _ in STAGES)


def is_lifecycle_segment(segment_id: str) -> bool:
    """Whether a membership change of this segment may change a profile's lifecycle stage."""
    return segment_id in LIFECYCLE_SEGMENTS


def stage_of(segment_ids: Collection[str]) -> str | None:
    """The most advanced stage among the lifecycle segments in ``segment_ids``; None if in none."""
    for segment, stage in STAGES:
        if segment in segment_ids:
            return stage
    return None


def write_lifecycle_stages(tx: StoreTx, profile_ids: Iterable[str], now: datetime) -> list[str]:
    """Set ``lifecycle_stage`` on each of these profiles from its current memberships (read in
    ``tx``, so the changes made in it count), where it differs from the stored value. Merged profiles
    are skipped. Returns the ids of the profiles whose property changed, in id order (a segment that
    reads ``profile.lifecycle_stage`` should be re-evaluated for them)."""
    ids = sorted(set(profile_ids))
    if not ids:
        return []
    memberships = tx.memberships_of(ids)
    profiles = tx.rows_by_id("profile", ids, columns=["properties", "merged_into"])
    changed: list[str] = []
    for pid in ids:
        row = profiles.get(pid)
        if row is None or row.get("merged_into") is not None:
            continue
        stage = stage_of(memberships.get(pid, frozenset()))
        if (row.get("properties") or {}).get(STAGE_PROPERTY) == stage:
            continue  # unchanged (None: never staged, or already cleared)
        tx.merge_properties(pid, {STAGE_PROPERTY: stage}, now)
        changed.append(pid)
    return changed


__all__ = ["LIFECYCLE_SEGMENTS", "STAGES", "STAGE_PROPERTY", "is_lifecycle_segment", "stage_of",
           "write_lifecycle_stages"]
