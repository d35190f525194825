"""Resolve a step parameter that is either a field path (``event.product_id``) or a literal."""

from __future__ import annotations

from typing import Any

from storeflow.flows.paths import FieldPathError, parse_field_path, resolve


def resolve_reference(ref: Any, record: dict[str, Any]) -> Any:
    if not isinstance(ref, str):
        return ref
    try:
        path = parse_field_path(ref)
    except FieldPathError:
        return ref
    return resolve(record, path)
