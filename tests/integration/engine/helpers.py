"""Helpers shared by the engine tests."""

from __future__ import annotations

from typing import Any

from storeflow.app import Storeflow


def apply(sf: Storeflow, text: str, status: str | None = "live") -> Any:
    return sf.flows.apply(sf.flows.validate(text, "test.yaml"), status=status)  # type: ignore[arg-type]


def profile_of(sf: Storeflow, email: str) -> dict[str, Any]:
    pid = sf.views.find_profile("email", email)
    assert pid is not None, f"no profile for {email}"
    return sf.views.profile(pid)


def steps(sf: Storeflow, run_id: str) -> list[tuple[str, str, str]]:
    return [(s["step_path"], s["kind"], s["status"]) for s in sf.views.run(run_id)["steps"]]
