"""storeflow events send and events import (JSONL and CSV)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_testing import Invoke, assert_one_error_line, check

from storeflow.app import Storeflow
from storeflow.settings import Settings

Write = Callable[[str, str], Path]

ORDER: dict[str, Any] = {"type": "order_placed", "id": "o-1", "email": "ana@example.com",
         "properties": {"order_id": "1001", "total": "120000", "currency": "IDR"}}
CHECKOUT: dict[str, Any] = {"type": "checkout_started", "email": "cy@example.com",
            "properties": {"cart_id": "cart-7", "total": 5, "currency": "IDR"}}
BAD_TOTAL: dict[str, Any] = {**ORDER, "id": "o-2", "properties": {**ORDER["properties"], "total": "abc"}}

JSONL = "\n".join([
    json.dumps(ORDER),        # 1 accepted
    json.dumps(ORDER),        # 2 duplicate
    json.dumps(BAD_TOTAL),    # 3 rejected: properties.total
    "",                       # 4 blank: skipped
    '{"type": "order_placed", ',  # 5 not JSON
    "[1, 2]",                 # 6 not an object
    json.dumps(CHECKOUT),     # 7 accepted
]) + "\n"


@pytest.fixture
def engine(db_url: str, cli: Invoke) -> Iterator[Storeflow]:
    check(cli("keys", "list"))  # creates and migrates the database
    sf = Storeflow(Settings(database_url=db_url))
    yield sf
    sf.close()


def _profile(sf: Storeflow, email: str) -> dict[str, Any]:
    pid = sf.views.find_profile("email", email)
    assert pid is not None, f"no profile for {email}"
    return sf.views.profile(pid)


def test_import_jsonl_counts_and_rejected_line_numbers(cli: Invoke, write: Write) -> None:
    write("events.jsonl", JSONL)

    result = check(cli("events", "import", "events.jsonl"))

    assert "events.jsonl: 6 records: accepted 2, duplicates 1, rejected 3" in result.stdout
    rows = {int(m[1]): m[2].strip() for m in re.finditer(r"^(\d+)\s+│ (.*)$", result.stdout, re.MULTILINE)}
    assert sorted(rows) == [3, 5, 6]
    assert rows[3].startswith("properties.total: 'abc' is not an amount")
    assert rows[5].startswith("not valid JSON")
    assert rows[6] == "expected an event object, got an array"
    assert result.stderr == ""


def test_import_jsonl_json_summary_and_strict(cli: Invoke, write: Write) -> None:
    write("events.jsonl", JSONL)
    check(cli("events", "import", "events.jsonl"))

    again = check(cli("events", "import", "events.jsonl", "--json", "--strict", "--batch-size", "2"), 1)

    summary = json.loads(again.stdout)
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (0, 3, 3)
    assert [e["line"] for e in summary["errors"]] == [3, 5, 6]
    assert again.stderr.strip() == "error: 3 line(s) rejected (--strict)"


def test_import_csv_maps_properties_and_profile_columns(cli: Invoke, write: Write, engine: Storeflow) -> None:
    write("events.csv", """\
        type,id,email,occurred_at,properties.order_id,properties.total,properties.currency,profile.first_name
        order_placed,c-1,ana@example.com,,1001,120000,IDR,Ana
        order_placed,c-2,bob@example.com,,1002,abc,IDR,
        customer_created,c-3,cy@example.com,,,,,"Cy, the third"
        """)

    result = check(cli("events", "import", "events.csv", "--source", "shop-export"))

    assert "events.csv: 3 records: accepted 2, duplicates 0, rejected 1" in result.stdout
    assert re.search(r"^3\s+│ properties\.total: 'abc' is not an amount", result.stdout, re.MULTILINE)
    ana = _profile(engine, "ana@example.com")
    [event] = ana["timeline"]
    assert event["type"] == "order_placed"
    assert event["source"] == "shop-export"
    assert event["properties"] == {"order_id": "1001", "total": "120000", "currency": "IDR"}
    assert ana["properties"] == {"first_name": "Ana"}
    cy = _profile(engine, "cy@example.com")
    assert cy["properties"] == {"first_name": "Cy, the third"}
    assert cy["timeline"][0]["properties"] == {}


def test_import_csv_with_an_unknown_column_is_one_error_line(cli: Invoke, write: Write) -> None:
    write("events.csv", "type,emial\norder_placed,a@example.com\n")
    line = assert_one_error_line(cli("events", "import", "events.csv"))
    assert "unknown CSV column(s) 'emial'" in line


def test_import_of_a_missing_file_is_one_error_line(cli: Invoke) -> None:
    line = assert_one_error_line(cli("events", "import", "nothere.jsonl"))
    assert "nothere.jsonl" in line and "No such file" in line


def test_send_one_event_and_a_rejected_one(cli: Invoke, engine: Storeflow) -> None:
    result = check(cli("events", "send", "--type", "order_placed", "--email", "Dee@Example.com",
                       "-p", "order_id=77", "-p", "total=19.90", "--property", "currency=USD", "--json"))
    out = json.loads(result.stdout)
    assert out["status"] == "accepted"
    [event] = _profile(engine, "dee@example.com")["timeline"]
    assert event["properties"] == {"order_id": 77, "total": 19.9, "currency": "USD"}

    again = check(cli("events", "send", "--type", "order_placed", "--email", "dee@example.com", "--id", "x-1",
                      "-p", "order_id=\"x-1\""))
    assert again.stdout.startswith("accepted: event evt_")
    repeated = check(cli("events", "send", "--type", "order_placed", "--email", "dee@example.com", "--id", "x-1",
                      "-p", "order_id=\"x-1\""))
    assert repeated.stdout.strip() == "duplicate: this event was already received; nothing changed"

    body = json.dumps({"type": "checkout_started", "email": "eve@example.com", "properties": {"total": "1"}})
    line = assert_one_error_line(cli("events", "send", "--json-body", body))
    assert line.startswith("error: event rejected: properties.")


def test_send_without_a_type_is_a_usage_error(cli: Invoke) -> None:
    result = check(cli("events", "send", "--email", "a@example.com"), 2)
    assert "--type" in result.stderr
