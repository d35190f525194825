"""A JSON Schema (draft 2020-12) of the segment document, for editors, ``storeflow segments schema``
and ``GET /v1/segments/schema``.

The condition forms are the flows' ones (``storeflow.flows.schema``), with a segment's rules: at
the top level (through all / any / not) a comparison reads ``profile.`` fields only, and a
collection's ``since`` has no flow anchors; inside a collection's ``where`` the collection's own
root is read. Rules that need code (segment ids that exist, cycles through ``in_segment``, field
types) are checked by ``load_segment`` and on apply.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from storeflow.flows.schema import SCHEMA_DIALECT, flow_json_schema
from storeflow.segments.definition import MAX_SEGMENT_BYTES, REQUIRED_KEYS

_SHARED_DEFS: Final = ("slug", "duration", "fieldPath", "eventType", "instant", "scalar", "condition")
_PROFILE_FIELD: Final = r"^profile(\.[^\s.\[\]]+)*$"
_CONDITION_REF: Final = "#/$defs/condition"
_SEGMENT_REF: Final = "#/$defs/segmentCondition"


def _segment_condition(condition: dict[str, Any]) -> dict[str, Any]:
    """The top-level condition of a segment, derived from the flows' ``condition`` definition."""
    forms: list[dict[str, Any]] = []
    for form in copy.deepcopy(condition["oneOf"]):
        props: dict[str, Any] = form.get("properties", {})
        if set(props) & {"all", "any", "not"}:
            for key in ("all", "any", "not"):
                if key in props:
                    target = props[key]["items"] if key != "not" else props[key]
                    target["$ref"] = _SEGMENT_REF
        elif "field" in props:
            props["field"] = {"type": "string", "pattern": _PROFILE_FIELD,
                              "description": "a profile field, e.g. profile.country or profile.consent_email"}
        else:
            for spec in props.values():
                since = spec.get("properties", {}).get("since") if isinstance(spec, dict) else None
                if since is not None:
                    since["anyOf"] = [{"enum": ["first_order"]}, {"$ref": "#/$defs/instant"}]
        forms.append(form)
    return {
        "description": "a segment condition: all / any / not, a comparison on a profile field, a collection "
                       "condition (history, orders, carts, messages: their where reads the item), in_segment, "
                       "identity, purchase_overdue, rfm or top",
        "oneOf": forms,
    }


def segment_json_schema() -> dict[str, Any]:
    """The JSON Schema of a segment document (draft 2020-12)."""
    flow_defs = flow_json_schema()["$defs"]
    defs = {name: copy.deepcopy(flow_defs[name]) for name in _SHARED_DEFS}
    defs["segmentCondition"] = _segment_condition(defs["condition"])
    assert _CONDITION_REF in str(defs["condition"])
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "storeflow segment",
        "description": f"A storeflow segment definition (see docs/segments.md); at most {MAX_SEGMENT_BYTES:,} bytes.",
        "type": "object",
        "required": list(REQUIRED_KEYS),
        "properties": {
            "id": {**defs["slug"], "description": "the segment's id (lowercase letters, digits, - and _)"},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": {"type": ["string", "null"]},
            "condition": {"$ref": _SEGMENT_REF},
        },
        "additionalProperties": False,
        "$defs": defs,
    }
