"""Segments: named audiences of profiles, kept current (see docs/segments.md).

Documents and validation (``storeflow.segments.definition``)::

    from storeflow.segments import load_segment
    segment = load_segment(text, source="segments/vip.yaml")   # SegmentValidationError lists every problem
    segment.digest, segment.to_document(), referenced_segments(segment)
"""

from storeflow.segments.definition import SegmentDefinition, load_segment, referenced_segments

__all__ = [
    "SegmentDefinition",
    "load_segment",
    "referenced_segments",
]
