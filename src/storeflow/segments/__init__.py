"""Segments: named audiences of profiles, kept current (see docs/segments.md).

Documents and validation (``storeflow.segments.definition``)::

    from storeflow.segments import load_segment
    segment = load_segment(text, source="segments/vip.yaml")   # SegmentValidationError lists every problem
    segment.digest, segment.to_document(), referenced_segments(segment)

Conditions in SQL (``storeflow.segments.sql``): ``compile_condition`` / ``members_query`` select the
profiles the Python evaluator accepts; ``scan_warnings`` names history nodes that scan whole event
histories.
"""

from storeflow.segments.definition import SegmentDefinition, load_segment, referenced_segments
from storeflow.segments.scan import event_type_counts, scan_warnings
from storeflow.segments.sql import UnsupportedCondition, compile_condition, members_query

__all__ = [
    "SegmentDefinition",
    "UnsupportedCondition",
    "compile_condition",
    "event_type_counts",
    "load_segment",
    "members_query",
    "referenced_segments",
    "scan_warnings",
]
