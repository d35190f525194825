"""A step that fails with an error nobody planned for (a bug: ``KeyError`` inside a step) fails its
run permanently, as before, and is logged at ERROR on ``storeflow.engine`` with the run, the flow,
the step and the traceback, so it is not silent. Expected refusals (a missing order) are not logged
as errors, and what is logged carries no secrets."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from helpers import apply

import storeflow.engine.runner as runner
from storeflow.app import Storeflow


def _buggy_note(real: Any) -> Any:
    def plan(action: str, params: Any, ctx: Any) -> Any:
        if action == "note":
            return {}["no-such-key"]  # a bug inside a step
        return real(action, params, ctx)
    return plan


def test_an_unexpected_permanent_failure_is_logged_with_run_flow_step_and_traceback(
        make_sf: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    sf: Storeflow = make_sf(webhook_secret="whsec_ZG9Ob3RMb2dUaGlzU2VjcmV0")
    monkeypatch.setattr(runner, "plan_action", _buggy_note(runner.plan_action))
    apply(sf, "id: buggy\nname: Buggy\ntrigger: {event: customer_updated}\nsteps:\n"
              "  - action: tag\n    tags: [first]\n  - action: note\n    text: boom\n")
    sf.ingest([{"type": "customer_updated", "email": "k@example.com"}])
    with caplog.at_level(logging.ERROR, logger="storeflow.engine"):
        result = sf.worker.run_batch()
    assert (result.claimed, result.failed) == (1, 1)
    run = sf.views.runs()[0]
    assert run["status"] == "failed" and "KeyError" in str(run["last_error"])
    records = [r for r in caplog.records if r.name == "storeflow.engine"]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    record = records[0]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert run["id"] in message and "buggy" in message and "steps[1]" in message and "KeyError" in message
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert "no-such-key" in caplog.text  # the traceback is in the log
    assert "whsec_ZG9Ob3RMb2dUaGlzU2VjcmV0" not in caplog.text


def test_an_expected_permanent_failure_is_not_logged_as_an_error(
        sf: Storeflow, caplog: pytest.LogCaptureFixture) -> None:
    apply(sf, "id: noorder\nname: No order\ntrigger: {event: customer_updated}\nsteps:\n"
              "  - action: tag\n    target: order\n    tags: [x]\n")
    sf.ingest([{"type": "customer_updated", "email": "n@example.com"}])
    with caplog.at_level(logging.ERROR, logger="storeflow.engine"):
        assert sf.worker.run_batch().failed == 1
    assert not [r for r in caplog.records if r.name == "storeflow.engine"]
