"""rfm and top in flow conditions, on both backends: ingest (trigger filters) and the worker (``if``)
read the store's segment statistics, read again after a refresh changes them; a batch whose flows use
neither does not read them."""

from __future__ import annotations

import uuid
from typing import Any

from helpers import apply, profile_of

from storeflow.app import Storeflow

BRANCH = """
id: big-spenders
name: Big spenders
trigger: {event: visited}
steps:
  - if: {top: {metric: monetary, percent: 10}}
    then:
      - action: tag
        tags: [top-spender]
    else:
      - action: tag
        tags: [other-spender]
"""

FILTERED = """
id: champions-only
name: Champions only
trigger:
  event: visited
  filter: {rfm: {monetary: {eq: 5}}}
steps:
  - action: tag
    tags: [champion]
"""

PLAIN = """
id: plain
name: Plain
trigger: {event: browsed}
steps:
  - action: tag
    tags: [browsed]
"""


def spend(sf: Storeflow, email: str, usd: int) -> None:
    result = sf.ingest([{"type": "order_placed", "email": email, "properties": {
        "order_id": uuid.uuid4().hex, "total": usd, "currency": "USD"}}])[0]
    assert result.status == "accepted", result.error


def visit(sf: Storeflow, *emails: str, event: str = "visited") -> list[Any]:
    results = sf.ingest([{"type": event, "email": e, "idempotency_key": uuid.uuid4().hex} for e in emails])
    assert {r.status for r in results} == {"accepted"}
    sf.drain()
    return results


def tags(sf: Storeflow, email: str) -> set[str]:
    return set(profile_of(sf, email)["tags"])


def test_top_and_rfm_branch_on_the_stored_statistics(make_sf: Any) -> None:
    sf: Storeflow = make_sf(currency="USD")
    for k in range(1, 11):  # ten customers spending 10..100 USD: the top 10 % is c10 alone
        spend(sf, f"c{k:02}@example.com", 10 * k)
    apply(sf, BRANCH)
    apply(sf, FILTERED)
    visit(sf, "c10@example.com", "c01@example.com")
    # no statistics computed yet: rfm and top are false
    assert tags(sf, "c10@example.com") == {"other-spender"}
    sf.segment_stats.refresh()
    visit(sf, "c10@example.com", "c09@example.com", "c01@example.com")
    assert tags(sf, "c10@example.com") == {"other-spender", "top-spender", "champion"}
    assert tags(sf, "c09@example.com") == {"other-spender", "champion"}  # monetary 5: the top fifth
    assert tags(sf, "c01@example.com") == {"other-spender"}
    spend(sf, "c01@example.com", 1000)  # c01 becomes the biggest spender once the statistics say so
    sf.segment_stats.refresh()
    visit(sf, "c01@example.com")
    assert tags(sf, "c01@example.com") == {"other-spender", "top-spender", "champion"}


def test_a_batch_reads_the_statistics_only_for_flows_using_them(sf: Storeflow) -> None:
    apply(sf, PLAIN)
    apply(sf, BRANCH)
    sf.segment_stats.refresh()
    reads: list[str] = []
    original = sf.flowset.stats.load

    def counted(tx: Any) -> Any:
        reads.append("read")
        return original(tx)

    sf.flowset.stats.load = counted  # type: ignore[method-assign]
    visit(sf, "a@example.com", "b@example.com", event="browsed")
    assert reads == [] and tags(sf, "a@example.com") == {"browsed"}
    visit(sf, "a@example.com", "b@example.com", "c@example.com")  # one ingest batch, one worker batch
    assert len(reads) == 2, reads
