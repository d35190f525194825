"""Row ids come from storeflow's own generator: nothing that seeds the global one repeats them."""

from __future__ import annotations

import random

from storeflow.model.events import new_id


def test_seeding_the_global_random_generator_does_not_repeat_ids() -> None:
    state = random.getstate()
    try:
        random.seed(0)
        first = new_id("evt")
        random.seed(0)
        second = new_id("evt")
    finally:
        random.setstate(state)
    assert first != second
    assert first.startswith("evt_") and len(first) == 4 + 32
