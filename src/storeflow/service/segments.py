"""Segment management: validate, apply (versions), list, show, delete, members, preview, export.

A segment that refers (``in_segment``) to an unknown segment, or to itself through others, is
refused with the chain named. A new version resets the segment's ``computed_version``, so the
membership engine computes it in full once; every change moves the segments revision on, so the
segment caches of every process reload. Preview counts and exports never write.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from storeflow.clock import Clock
from storeflow.errors import ConflictError, NotFoundError, Problem, SegmentValidationError
from storeflow.flows.problems import Loc, format_loc
from storeflow.flows.segment_stats import SegmentStats
from storeflow.flows.vocabulary import did_you_mean
from storeflow.segments.definition import Format, SegmentDefinition, load_segment, referenced_segments
from storeflow.store.base import Store, StoreTx

MAX_PAGE: Final = 1000
"""Most members in one page (API ``limit``)."""
EXPORT_PAGE: Final = 1000
"""Members read per query while exporting (the export holds one page in memory at a time)."""
PREVIEW_SAMPLE: Final = 10
"""Profiles shown by a preview."""
CSV_COLUMNS: Final[tuple[str, ...]] = ("profile_id", "email", "phone", "entered_at")
_FORMULA_START: Final = ("=", "@", "\t", "\r")

Change = Literal["created", "new_version", "unchanged"]


@dataclass(frozen=True)
class ApplyResult:
    """What applying a segment did: ``created`` (new, or a deleted one brought back), ``new_version``
    (the document changed: computed again in full) or ``unchanged``."""

    segment_id: str
    version: int
    change: Change

    def as_json(self) -> dict[str, Any]:
        return {"segment_id": self.segment_id, "version": self.version, "change": self.change}


def segment_not_found(segment_id: str) -> NotFoundError:
    return NotFoundError(f"segment {segment_id!r} does not exist; `storeflow segments list` shows the segments")


def _references(document: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
    """(location, segment id) of every ``in_segment`` in a segment document's condition."""
    stack: list[tuple[Any, Loc]] = [(document.get("condition"), ("condition",))]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, Mapping):
            if isinstance(node.get("in_segment"), str):
                yield (*loc, "in_segment"), node["in_segment"]
            stack.extend((value, (*loc, str(key))) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, (*loc, i)) for i, value in enumerate(node))


def _document_refs(document: Mapping[str, Any]) -> set[str]:
    return {segment for _, segment in _references(document)}


def find_cycle(start: str, refs: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A chain ``[start, ..., start]`` through ``refs`` (segment -> segments it refers to), or None."""
    path: list[str] = [start]
    on_path = {start}
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        for nxt in sorted(refs.get(node, ())):
            if nxt == start:
                return [*path, start]
            if nxt in on_path or nxt in done:
                continue
            path.append(nxt)
            on_path.add(nxt)
            found = visit(nxt)
            if found is not None:
                return found
            on_path.discard(path.pop())
            done.add(nxt)
        return None

    return visit(start)


def check_references(defn: SegmentDefinition, known: Mapping[str, Mapping[str, Any]],
                     source: str | None = None) -> None:
    """Refuse a reference to an unknown segment (not in ``known``: id -> stored document) or a
    cycle through references; raises SegmentValidationError naming the place and the chain."""
    document = defn.to_document()
    problems: list[Problem] = []
    for loc, segment in sorted(_references(document)):
        if segment == defn.id or segment in known:
            continue
        hint = did_you_mean(segment, known, cutoff=0.6) or (
            "known segments: " + ", ".join(sorted(known)[:20]) if known else "no segment exists yet; apply it first")
        problems.append(Problem(format_loc(loc), f'unknown segment "{segment}"', hint))
    if not problems:
        refs = {sid: _document_refs(doc) for sid, doc in known.items() if sid != defn.id}
        refs[defn.id] = referenced_segments(defn)
        chain = find_cycle(defn.id, refs)
        if chain is not None:
            where = next((format_loc(loc) for loc, seg in sorted(_references(document)) if seg == chain[1]),
                         "condition")
            problems.append(Problem(where, "the segment refers to itself: " + " -> ".join(chain),
                                    "a segment cannot be part of its own condition; remove one in_segment "
                                    "of the chain"))
    if problems:
        raise SegmentValidationError(problems, source=source)


def users_of(segment_id: str, users: Iterable[Mapping[str, Any]]) -> list[str]:
    """What in ``users`` (segment_users rows) refers to the segment, described: "flow 'x' (trigger)"."""
    found: list[str] = []
    for user in users:
        definition = user.get("definition") or {}
        if user["kind"] == "flow":
            trigger = definition.get("trigger")
            if isinstance(trigger, Mapping) and trigger.get("segment") == segment_id:
                found.append(f"live flow {user['id']!r} (its trigger)")
            elif _mentions_in_segment(definition, segment_id):
                found.append(f"live flow {user['id']!r} (tests in_segment)")
        elif segment_id in _audience_ids(definition):
            found.append(f"campaign {user['id']!r} (its audience)")
    return found


def _mentions_in_segment(document: Any, segment_id: str) -> bool:
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if node.get("in_segment") == segment_id:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _audience_ids(definition: Mapping[str, Any]) -> set[str]:
    audience = definition.get("audience", definition)
    ids: set[str] = set()
    if isinstance(audience, Mapping):
        for key in ("include", "exclude"):
            value = audience.get(key)
            if isinstance(value, str):
                ids.add(value)
            elif isinstance(value, list):
                ids.update(v for v in value if isinstance(v, str))
    return ids


def csv_safe(value: Any) -> str:
    """A CSV cell that spreadsheet programs do not run as a formula: text starting with ``=``,
    ``@``, a tab or a carriage return, or with ``+``/``-`` not followed by a digit, gets a leading
    apostrophe (phone numbers such as +628123 are kept as they are)."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    risky = text.startswith(_FORMULA_START) or (
        text[:1] in ("+", "-") and not (len(text) > 1 and text[1].isdigit()))
    return "'" + text if risky else text


class SegmentService:
    """Segments through the store's ports: the API, the CLI and the demo use it."""

    def __init__(self, store: Store, clock: Clock, store_tz: ZoneInfo,
                 on_wake: Callable[[], None] | None = None) -> None:
        self.store, self.clock, self.store_tz = store, clock, store_tz
        self.on_wake = on_wake  # wakes this process's worker once a changed segment is committed

    # -- documents --------------------------------------------------------------------------------
    def load(self, document: str | bytes | Mapping[str, Any], source: str = "<segment>",
             fmt: Format = "auto") -> SegmentDefinition:
        """The segment in ``document`` (checked alone: references are checked by validate/apply)."""
        return load_segment(document, fmt=fmt, source=source)

    def validate(self, document: str | bytes | Mapping[str, Any] | SegmentDefinition,
                 source: str = "<segment>", fmt: Format = "auto") -> SegmentDefinition:
        """Load the document and check its references against the stored segments. Writes nothing."""
        defn = document if isinstance(document, SegmentDefinition) else self.load(document, source, fmt)
        with self.store.read() as tx:
            check_references(defn, tx.live_segment_definitions(), source)
        return defn

    def apply(self, defn: SegmentDefinition) -> ApplyResult:
        """Store the segment: a new one, a new version if its document changed, or nothing."""
        return self.apply_all([defn])[0]

    def apply_all(self, defns: Sequence[SegmentDefinition], sources: Sequence[str] | None = None) -> list[ApplyResult]:
        """Apply several segments in one transaction, in an order where each one's references are
        stored first (they may refer to each other); refused whole if any reference is unknown or
        any cycle forms."""
        now = self.clock.now()
        names = list(sources) if sources is not None else [None] * len(defns)
        seen: dict[str, str | None] = {}
        for defn, source in zip(defns, names, strict=True):
            if defn.id in seen:
                where = f" (also in {seen[defn.id]})" if seen[defn.id] else ""
                raise SegmentValidationError([Problem("id", f"segment id {defn.id!r} is given twice{where}",
                                                      "each segment needs its own id")], source=source)
            seen[defn.id] = source
        with self.store.transaction() as tx:
            tx.bump_segments_revision()  # first: concurrent segment changes wait here (a row lock), so
            known = tx.live_segment_definitions()  # no two of them can close a cycle unseen
            batch = {d.id: d.to_document() for d in defns}
            everything = {**known, **batch}
            for defn, source in zip(defns, names, strict=True):
                check_references(defn, everything, source)
            results = {d.id: self._apply_one(tx, d, now) for d in _dependency_order(defns)}
            if any(r.change != "unchanged" for r in results.values()):
                tx.notify_after_commit("storeflow_runs")  # workers elsewhere compute it at once
        if self.on_wake is not None and any(r.change != "unchanged" for r in results.values()):
            self.on_wake()
        return [results[d.id] for d in defns]

    def _apply_one(self, tx: StoreTx, defn: SegmentDefinition, now: datetime) -> ApplyResult:
        document, digest = defn.to_document(), defn.digest
        current = tx.get_segment(defn.id)
        if current is None:
            tx.insert_segment({"id": defn.id, "name": defn.name, "status": "live", "current_version": 1,
                               "computed_version": None, "computed_at": None, "member_count": 0,
                               "created_at": now, "updated_at": now})
            tx.insert_segment_version(defn.id, 1, digest, document, now)
            return ApplyResult(defn.id, 1, "created")
        version = int(current["current_version"])
        stored = tx.insert_segment_version(defn.id, version + 1, digest, document, now)
        if stored:
            version += 1
        if current["status"] == "deleted":
            tx.update_segment(defn.id, name=defn.name, status="live", current_version=version, computed_version=None,
                              computed_at=None, member_count=0, updated_at=now)
            return ApplyResult(defn.id, version, "created")
        if not stored:
            return ApplyResult(defn.id, version, "unchanged")
        tx.update_segment(defn.id, name=defn.name, current_version=version, computed_version=None, computed_at=None,
                          updated_at=now)
        return ApplyResult(defn.id, version, "new_version")

    # -- reading ----------------------------------------------------------------------------------
    def get(self, segment_id: str) -> dict[str, Any]:
        """The segment row with its current ``definition`` and its ``versions``."""
        with self.store.read() as tx:
            segment = self._live(tx, segment_id)
            version = tx.get_segment_version(segment_id, int(segment["current_version"]))
            segment["definition"] = version["definition"] if version else None
            segment["versions"] = tx.segment_versions_of(segment_id)
            return segment

    def versions(self, segment_id: str) -> list[dict[str, Any]]:
        """The segment's versions with their documents, oldest first."""
        with self.store.read() as tx:
            self._live(tx, segment_id)
            found = []
            for row in tx.segment_versions_of(segment_id):
                version = tx.get_segment_version(segment_id, int(row["version"]))
                found.append({**row, "definition": version["definition"] if version else None})
            return found

    @staticmethod
    def _live(tx: StoreTx, segment_id: str) -> dict[str, Any]:
        segment = tx.get_segment(segment_id)
        if segment is None or segment["status"] == "deleted":
            raise segment_not_found(segment_id)
        return segment

    # -- deleting ---------------------------------------------------------------------------------
    def delete(self, segment_id: str) -> dict[str, Any]:
        """Delete the segment: its members are removed and their stays closed. Refused while a live
        flow triggers on it or tests it, a campaign still to send uses it, or another segment refers
        to it (all of them named)."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            tx.bump_segments_revision()  # first: waits for concurrent segment changes (see apply_all)
            segment = self._live(tx, segment_id)
            users = users_of(segment_id, tx.segment_users())
            users += [f"segment {other!r} (in_segment)" for other, doc in sorted(tx.live_segment_definitions().items())
                      if other != segment_id and segment_id in _document_refs(doc)]
            if users:
                raise ConflictError(f"segment {segment_id!r} is in use by " + ", ".join(users)
                                    + "; change or pause those first")
            removed = tx.delete_segment(segment_id, now)
        return {"segment_id": segment_id, "deleted": True, "version": segment["current_version"],
                "members_removed": removed}

    # -- members ----------------------------------------------------------------------------------
    def members(self, segment_id: str, *, after: str | None = None, limit: int = 100,
                at: datetime | None = None) -> dict[str, Any]:
        """A page of members by profile id (``after``: the previous page's ``next``), with when they
        entered. ``at``: the members at that instant, from the membership history (a deleted
        segment's history too)."""
        if not 1 <= limit <= MAX_PAGE:
            raise SegmentValidationError([Problem("limit", f"must be from 1 to {MAX_PAGE}, not {limit}")])
        if at is not None:
            if at.tzinfo is None:
                raise SegmentValidationError([Problem("at", "must have a time zone", "e.g. 2026-10-01T00:00:00Z")])
            try:
                at = at.astimezone(UTC)
            except OverflowError:
                raise SegmentValidationError([Problem("at", "is out of range", "e.g. 2026-10-01T00:00:00Z")]) from None
        with self.store.read() as tx:
            segment = tx.get_segment(segment_id)
            if segment is None or (at is None and segment["status"] == "deleted"):
                raise segment_not_found(segment_id)
            rows = (tx.segment_members_page(segment_id, after, limit) if at is None
                    else tx.segment_members_at(segment_id, at, after, limit))
        return {"segment_id": segment_id, "at": at, "members": rows,
                "next": rows[-1]["profile_id"] if len(rows) == limit else None}

    def export_csv(self, segment_id: str) -> Iterator[str]:
        """The current members as CSV text (header ``profile_id,email,phone,entered_at``), produced a
        page at a time, each page in its own short read: memory stays flat however large the
        segment. Raises NotFoundError before producing anything for an unknown segment."""
        with self.store.read() as tx:
            self._live(tx, segment_id)

        def produce() -> Iterator[str]:
            yield _csv_line(CSV_COLUMNS)
            after: str | None = None
            while True:
                with self.store.read() as tx:
                    rows = tx.segment_members_page(segment_id, after, EXPORT_PAGE)
                if rows:
                    yield "".join(_csv_line([csv_safe(r[c]) for c in CSV_COLUMNS]) for r in rows)
                if len(rows) < EXPORT_PAGE:
                    return
                after = rows[-1]["profile_id"]

        return produce()

    # -- preview ----------------------------------------------------------------------------------
    def preview(self, target: SegmentDefinition | str, *, sample: int = PREVIEW_SAMPLE) -> dict[str, Any]:
        """How many profiles a segment (a document, or a stored segment by id) holds now, computed by
        the SQL evaluator without writing anything, with a sample (profile id and email) and the
        cost warnings of its query."""
        from storeflow.segments.sql_facets import UnsupportedCondition

        now = self.clock.now()
        with self.store.read() as tx:
            if isinstance(target, str):
                segment = self._live(tx, target)
                version = tx.get_segment_version(target, int(segment["current_version"]))
                if version is None:  # pragma: no cover - a live segment always has its version
                    raise segment_not_found(target)
                defn = load_segment(version["definition"], source=f"segment {target}")
            else:
                defn = target
                check_references(defn, tx.live_segment_definitions())
            stats = _stats(tx.meta_value("segment_stats"))
            try:
                found = tx.preview_segment(defn.condition, now=now, store_tz=self.store_tz, stats=stats,
                                           sample=sample)
            except UnsupportedCondition as exc:
                raise SegmentValidationError([Problem("condition", str(exc))], source=defn.id) from exc
        return {"segment_id": defn.id, "at": now, "count": found["count"], "sample": found["sample"],
                "warnings": scan_warnings(defn)}

    def list(self) -> list[dict[str, Any]]:  # last: the name shadows the builtin inside the class
        """Every segment not deleted, by id, with member_count and computed_version/computed_at."""
        with self.store.read() as tx:
            return tx.list_segments()

def _dependency_order(defns: Sequence[SegmentDefinition]) -> list[SegmentDefinition]:
    """``defns`` with each one after the ones (in ``defns``) it refers to (cycles were refused)."""
    by_id = {d.id: d for d in defns}
    ordered: list[SegmentDefinition] = []
    seen: set[str] = set()

    def place(defn: SegmentDefinition) -> None:
        if defn.id in seen:
            return
        seen.add(defn.id)
        for ref in sorted(referenced_segments(defn)):
            if ref in by_id:
                place(by_id[ref])
        ordered.append(defn)

    for defn in defns:
        place(defn)
    return ordered


def _stats(value: str | None) -> SegmentStats | None:
    if not value:
        return None
    return SegmentStats.from_json(json.loads(value))


def scan_warnings(defn: SegmentDefinition) -> list[str]:
    """The SQL compiler's warnings about the cost of the segment's query (e.g. an aggregate over an
    unbounded event history), when it gives any."""
    from storeflow.segments import sql

    warn = getattr(sql, "scan_warnings", None)
    if warn is None:
        return []
    return [str(w) for w in warn(defn.condition)]


def _csv_line(values: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()
