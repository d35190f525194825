"""The storeflow exception tree. Every error storeflow raises on purpose derives from StoreflowError.

    StoreflowError
    ├── ConfigError                 settings or config file invalid
    ├── ValidationError             input that storeflow refuses (names what and where)
    │   ├── FlowValidationError     a flow document with one or more problems (all listed)
    │   ├── SegmentValidationError  a segment document with one or more problems (all listed)
    │   ├── EventValidationError    an event that cannot be ingested
    │   └── ConditionError          a condition that cannot be evaluated on the given record
    ├── NotFoundError               a flow, segment, run, profile or key that does not exist
    ├── ConflictError               a state change that is not allowed (e.g. activating an archived flow)
    ├── StorageError                the database failed (wrapped driver or SQLAlchemy error)
    │   ├── MigrationError          the schema could not be brought up to date
    │   └── LostRace                a concurrent transaction won (a row this batch meant to write, a deadlock); retry
    ├── ActionError                 a flow action failed
    │   ├── TransientActionError    worth retrying with backoff
    │   └── PermanentActionError    retrying cannot help; the step is marked failed
    └── DeliveryError               a channel could not deliver a message
        └── BlockedDestinationError the destination is not allowed (e.g. a private network)

Library errors are mapped at the boundary with ``raise ... from exc`` so callers catch only these.
"""

from __future__ import annotations

from dataclasses import dataclass


class StoreflowError(Exception):
    """Root of every error storeflow raises on purpose."""


class ConfigError(StoreflowError):
    """Settings or the config file are invalid."""


@dataclass(frozen=True)
class Problem:
    """One problem in a document: where it is, what is wrong, and how to fix it."""

    path: str
    message: str
    hint: str | None = None
    line: int | None = None

    def format(self, source: str | None = None) -> str:
        where = source or ""
        if self.line is not None and where:
            where = f"{where}:{self.line}"
        prefix = f"{where}: " if where else ""
        loc = f"{self.path}: " if self.path else ""
        text = f"{prefix}{loc}{self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return text


class ValidationError(StoreflowError):
    """Input that storeflow refuses. Carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(p.format(source) for p in self.problems) or "invalid input")


class FlowValidationError(ValidationError):
    """A flow document with one or more problems."""


class SegmentValidationError(ValidationError):
    """A segment document with one or more problems."""


class EventValidationError(ValidationError):
    """An event that cannot be ingested."""


class ConditionError(ValidationError):
    """A condition that cannot be evaluated."""


class NotFoundError(StoreflowError):
    """A flow, segment, run, profile or key that does not exist."""


class ConflictError(StoreflowError):
    """A state change that is not allowed."""


class StorageError(StoreflowError):
    """The database failed."""


class MigrationError(StorageError):
    """The schema could not be brought up to date."""


class LostRace(StorageError):
    """Another transaction won: it wrote a row (an event's idempotency key, an identity, a run's
    active key) that this batch meant to write, or the database broke a deadlock or serialization
    conflict against this one. The transaction rolled back and is safe to retry."""


class ActionError(StoreflowError):
    """A flow action failed."""


class TransientActionError(ActionError):
    """A failure worth retrying (a timeout, a 503, a lock)."""


class PermanentActionError(ActionError):
    """A failure that retrying cannot fix (a 400, a missing product)."""


class DeliveryError(StoreflowError):
    """A channel could not deliver a message."""


class BlockedDestinationError(DeliveryError):
    """The destination is not allowed, e.g. an address on a private network."""
