"""``storeflow segments stats [--refresh]``: the segment statistics RFM scores and top-percent
conditions compare with (storeflow.segments.stats)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from storeflow.cli.context import state
from storeflow.cli.output import fmt_time, line, print_json, print_table


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.1f}d"


def stats(
    ctx: typer.Context,
    refresh: Annotated[bool, typer.Option("--refresh", help="Compute them now from the customers (and mark "
                                                           "segments using rfm/top for a full computation "
                                                           "if they changed).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
) -> None:
    """Show the segment statistics: RFM quintile cut points and spend/order-count percentiles of the
    store's customers. The engine refreshes them daily."""
    from storeflow.segments.stats import StatsRefresher, load_stats

    with state(ctx).open() as sf:
        tz = sf.settings.tz
        recomputed: tuple[str, ...] = ()
        at: datetime | None
        if refresh:
            done = StatsRefresher(sf.store, sf.clock, sf.settings.currency).refresh()
            found, at = done.stats, done.computed_at
            recomputed = done.recomputed
        else:
            with sf.store.read() as tx:
                stored = load_stats(tx)
            if stored is None:
                line("No segment statistics yet: the engine computes them when it runs, or now with --refresh.")
                return
            found, at = stored
    data: dict[str, Any] = {**found.to_json(), "computed_at": at, "recomputed": list(recomputed)}
    if as_json:
        print_json(data)
        return
    line(f"Segment statistics over {found.customers} customers (with an order), in {found.currency}, "
         f"computed {fmt_time(at, tz)}")
    cuts = [("recency (since the last order)", *(_days(d.total_seconds()) for d in found.recency)),
            ("frequency (orders)", *found.frequency),
            (f"monetary (spent, {found.currency})", *found.monetary)]
    print_table(["RFM cut points", "20%", "40%", "60%", "80%"], cuts)
    if found.monetary_percentiles:
        picks = (50, 75, 90, 95, 99)
        print_table(["percentile", *(f"{p}th" for p in picks)],
                    [("spend", *(found.monetary_percentiles[p - 1] for p in picks)),
                     ("orders", *(found.frequency_percentiles[p - 1] for p in picks))])
    if recomputed:
        line("changed: computing again " + ", ".join(recomputed))
