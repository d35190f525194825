"""Read models for the API and CLI: a run step by step, a profile with its timeline."""

from __future__ import annotations

from typing import Any

from storeflow.errors import NotFoundError
from storeflow.flows.problems import format_loc
from storeflow.flows.step_ids import step_form, walk_documents
from storeflow.store.base import Store


class Views:
    def __init__(self, store: Store) -> None:
        self.store = store

    def runs(self, *, flow_id: str | None = None, status: str | None = None, profile_id: str | None = None,
             limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            return tx.list_runs(flow_id=flow_id, status=status, profile_id=profile_id, limit=limit, offset=offset)

    def run(self, run_id: str) -> dict[str, Any]:
        with self.store.read() as tx:
            run = tx.get_run(run_id)
            if run is None:
                raise NotFoundError(f"run {run_id!r} does not exist")
            run["steps"] = tx.run_steps_of(run_id)
            messages = tx.messages_of_run(run_id)
            attempts = tx.attempts_of_messages(m["id"] for m in messages)
            for m in messages:
                m["attempts_log"] = attempts.get(m["id"], [])
            run["messages"] = messages
            by_key = {m["idempotency_key"]: m for m in messages}
            for step in run["steps"]:
                key = (step["detail"] or {}).get("message_key")
                if key in by_key:
                    step["delivery"] = {"status": by_key[key]["status"], "attempts": by_key[key]["attempts"],
                                        "last_error": by_key[key]["last_error"]}
            return run

    def flow_steps(self, flow_id: str) -> dict[str, Any]:
        """Per-step statistics of a flow, keyed by step id so that they follow a step across
        versions: the steps of the current version in document order (with their path there),
        then keys only older versions had (``path`` None). See ``step_stats`` for the counts."""
        with self.store.read() as tx:
            flow = tx.get_flow(flow_id)
            if flow is None:
                raise NotFoundError(f"flow {flow_id!r} does not exist; `storeflow flows list` shows the flows")
            version = int(flow["current_version"])
            stored = tx.get_flow_version(flow_id, version)
            stats = tx.step_stats(flow_id)
        document = stored["definition"] if stored is not None else {}
        steps: list[dict[str, Any]] = []
        for path, step in walk_documents(document.get("steps") or []):
            key = str(step.get("id") or format_loc(path))
            kind = step_form(step)
            steps.append({"id": key, "path": format_loc(path), "kind": kind, "name": step.get("name"),
                          **({"action": step["action"]} if kind == "action" else {}),
                          **stats.pop(key, {"runs": 0, "log": {}, "waiting": 0, "messages": {}})})
        steps += [{"id": key, "path": None, "kind": None, "name": None, **counts}
                  for key, counts in sorted(stats.items())]
        return {"flow_id": flow_id, "version": version, "steps": steps}

    def profile(self, profile_id: str, timeline: int = 50) -> dict[str, Any]:
        with self.store.read() as tx:
            profile = tx.get_profile(profile_id)
            if profile is None:
                raise NotFoundError(f"profile {profile_id!r} does not exist")
            profile["identities"] = [{"kind": k, "value": v} for k, v in tx.identities_of(profile["id"])]
            profile["timeline"] = tx.timeline(profile["id"], timeline)
            profile["orders"] = tx.profile_orders(profile["id"], 20)
            profile["runs"] = tx.list_runs(profile_id=profile["id"], limit=20)
            return profile

    def find_profile(self, kind: str, value: str) -> str | None:
        with self.store.read() as tx:
            found = tx.find_profiles_by_identities([(kind, value)])
            pid = found.get((kind, value))
            return tx.resolve_profile_id(pid) if pid else None
