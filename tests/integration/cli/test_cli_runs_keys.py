"""storeflow runs list/show after a triggering import, and storeflow keys create/list/revoke."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_testing import GOOD_FLOW, Invoke, assert_one_error_line, check

Write = Callable[[str, str], Path]

ORDERS = "\n".join(json.dumps({"type": "order_placed", "id": f"o-{n}", "email": f"c{n}@example.com",
                               "properties": {"order_id": str(n), "total": "10", "currency": "USD"}})
                   for n in (1, 2)) + "\n"


def test_import_with_process_runs_the_flow_and_runs_show_tells_step_by_step(cli: Invoke, write: Write) -> None:
    write("flows/tag.yaml", GOOD_FLOW)
    check(cli("flows", "apply", "flows"))
    write("orders.jsonl", ORDERS)

    imported = check(cli("events", "import", "orders.jsonl", "--process"))
    assert "accepted 2" in imported.stdout and "2 run(s) started" in imported.stdout
    assert "processed: 2 run(s), 4 step(s)" in imported.stdout

    runs = json.loads(check(cli("runs", "list", "--flow", "tag-buyers", "--json")).stdout)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"completed"}
    assert json.loads(check(cli("runs", "list", "--status", "waiting", "--json")).stdout) == []
    assert len(json.loads(check(cli("runs", "list", "--limit", "1", "--json")).stdout)) == 1

    table = check(cli("runs", "list")).stdout
    assert sum(1 for ln in table.splitlines() if ln.startswith("run_") and "completed" in ln) == 2

    shown = check(cli("runs", "show", runs[0]["id"])).stdout
    assert f"run {runs[0]['id']}: flow tag-buyers v1" in shown
    assert "status completed" in shown
    steps = [[c.strip() for c in ln.split("│")] for ln in shown.splitlines() if re.match(r"^\d+\s+│", ln)]
    # The step column is the step's id, generated at apply: <action>-<6 hex>.
    assert [(s[0], re.sub("-[0-9a-f]{6}$", "-*", s[2]), s[3], s[4]) for s in steps] == [
        ("1", "tag-*", "action:tag", "done"), ("2", "note-*", "action:note", "done")]
    assert 'added=["buyer"]' in steps[0][5]
    assert "note=tagged a buyer" in steps[1][5]


def test_import_without_process_only_starts_runs(cli: Invoke, write: Write) -> None:
    write("tag.yaml", GOOD_FLOW)
    check(cli("flows", "apply", "tag.yaml"))
    write("orders.jsonl", ORDERS)
    imported = check(cli("events", "import", "orders.jsonl"))
    assert "processed" not in imported.stdout
    runs = json.loads(check(cli("runs", "list", "--json")).stdout)
    assert {r["status"] for r in runs} != {"completed"}
    assert len(runs) == 2


def test_runs_show_unknown_run_is_one_error_line(cli: Invoke) -> None:
    assert "run 'run_nope' does not exist" in assert_one_error_line(cli("runs", "show", "run_nope"))


def test_keys_create_list_revoke(cli: Invoke) -> None:
    created = check(cli("keys", "create", "--kind", "public", "--name", "storefront"))
    match = re.search(r"Created public key (key_\w+): (sf_pub_[A-Za-z0-9_-]{43})", created.stdout)
    assert match, created.stdout
    key_id, secret = match.groups()
    private = json.loads(check(cli("keys", "create", "--kind", "private", "--json")).stdout)
    assert private["secret"].startswith("sf_priv_")

    listed = check(cli("keys", "list")).stdout
    assert secret not in listed and private["secret"] not in listed
    row = next(ln for ln in listed.splitlines() if ln.startswith(key_id))
    assert "storefront" in row and "public" in row and secret[:12] in row

    assert check(cli("keys", "revoke", key_id)).stdout.strip() == f"Revoked key {key_id}"
    keys = {k["id"]: k for k in json.loads(check(cli("keys", "list", "--json")).stdout)}
    assert keys[key_id]["revoked_at"] is not None
    assert keys[private["id"]]["revoked_at"] is None
    assert all("secret_hash" not in k for k in keys.values())

    assert "already revoked" in assert_one_error_line(cli("keys", "revoke", key_id))
    assert "does not exist" in assert_one_error_line(cli("keys", "revoke", "key_nope"))


def test_keys_create_with_an_unknown_kind_is_a_usage_error(cli: Invoke) -> None:
    result = check(cli("keys", "create", "--kind", "secret"), 2)
    assert "--kind" in result.stderr


HOOK_FLOW = """\
id: hook-carts
name: Hook carts
status: live
trigger:
  event: checkout_started
steps:
  - action: webhook
    url: http://127.0.0.1:9/hook
  - wait: 1h
"""


def test_runs_show_lists_messages_with_status_and_attempts(
    cli: Invoke, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a webhook signing secret the delivery fails at once, before any network call.
    # A loopback webhook is refused when the flow is validated unless private addresses are allowed.
    monkeypatch.setenv("STOREFLOW_WEBHOOK_ALLOW_PRIVATE", "true")
    write("hook.yaml", HOOK_FLOW)
    check(cli("flows", "apply", "hook.yaml"))
    sent = check(cli("events", "send", "--type", "checkout_started", "--email", "z@example.com",
                     "-p", "cart_id=c-9", "--process"))
    assert "processed: 1 run(s), 2 step(s), 1 message(s)" in sent.stdout
    [run] = json.loads(check(cli("runs", "list", "--json")).stdout)
    assert run["status"] == "waiting"

    shown = check(cli("runs", "show", run["id"])).stdout
    steps_part, messages_part = shown.split("Messages", 1)
    hook_row = next(ln for ln in steps_part.splitlines() if "action:webhook" in ln)
    assert "url=http://127.0.0.1:9/hook" in hook_row and "delivery failed after 1 attempt" in hook_row
    wait_row = next(ln for ln in steps_part.splitlines() if ln.startswith("2 "))
    assert "waiting" in wait_row and "until " in wait_row
    message_row = next(ln for ln in messages_part.splitlines() if ln.startswith("msg_"))
    cells = [c.strip() for c in message_row.split("│")]
    assert [cells[1], re.sub("-[0-9a-f]{6}$", "-*", cells[2]), *cells[3:5]] == ["webhook", "webhook-*", "failed", "1"]
    assert "signing secret" in cells[6]  # no webhook secret configured in this test: a permanent failure
