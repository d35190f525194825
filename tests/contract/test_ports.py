"""The storage ports stay whole: every operation of every port is implemented by the SQL
transaction, declared by the write-behind batch view (answered from its cache, passed through, or
flushing first), and exercised by a contract test on both backends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.contract.helpers import T0, event_row

from storeflow.store import Store
from storeflow.store.ports import PORTS, StoreTx, operations
from storeflow.store.sql import write_behind
from storeflow.store.sql.tx import SqlTx
from storeflow.store.sql.write_behind import ANSWERED, FLUSHING, PASS_THROUGH, WriteBehindTx

PORT_OPERATIONS = sorted({name for port in PORTS for name in operations(port)})
CONTRACT_TESTS = [p for p in Path(__file__).parent.glob("test_*.py") if p.name != Path(__file__).name]


def test_store_tx_combines_every_port() -> None:
    assert set(PORTS) <= set(StoreTx.__mro__)
    assert len(PORT_OPERATIONS) == sum(len(operations(p)) for p in PORTS), "an operation is on two ports"


@pytest.mark.parametrize("impl", [SqlTx, WriteBehindTx])
def test_the_sql_transactions_implement_every_operation(impl: type) -> None:
    # mypy checks the signatures (SqlStore hands out a SqlTx as a StoreTx); this checks presence.
    assert [name for name in PORT_OPERATIONS if not callable(getattr(impl, name, None))] == []


def test_write_behind_declares_every_port_operation_once() -> None:
    for name in PORT_OPERATIONS:
        kinds = [kind for kind, group in (("ANSWERED", ANSWERED), ("PASS_THROUGH", PASS_THROUGH),
                                          ("FLUSHING", FLUSHING)) if name in group]
        assert len(kinds) == 1, f"WriteBehindTx must declare {name} exactly once; found in {kinds}"
    assert sorted(ANSWERED | PASS_THROUGH | set(FLUSHING)) == PORT_OPERATIONS
    for name in ANSWERED:
        assert name in WriteBehindTx.__dict__, f"{name} is declared ANSWERED but WriteBehindTx does not define it"
    for name in FLUSHING:
        assert getattr(WriteBehindTx, name).__wrapped__ is getattr(SqlTx, name), f"{name} does not flush first"


def test_an_undeclared_operation_is_refused_when_the_module_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write_behind, "FLUSHING", {k: v for k, v in FLUSHING.items() if k != "timeline"})
    with pytest.raises(TypeError, match=r"timeline: declared in none"):
        write_behind._declare(type("Probe", (WriteBehindTx,), {}))


def test_a_flushing_operation_sees_the_pending_writes(store: Store) -> None:
    with store.transaction() as tx:
        view = tx.write_behind()
        view.insert_event(event_row("k", profile_id="p", occurred_at=T0))  # buffered
        assert FLUSHING["timeline"] == "all"
        assert [e["id"] for e in view.timeline("p")] == ["evt_k"]
        assert view.flushes == 1


def unnamed_operations(operations_: list[str], sources: list[str]) -> list[str]:
    """The operations no source calls as ``.name(``."""
    text = "\n".join(sources)
    return [name for name in operations_ if not re.search(rf"\.{name}\(", text)]


def test_every_port_operation_is_exercised_by_a_contract_test() -> None:
    sources = [p.read_text() for p in CONTRACT_TESTS]
    assert unnamed_operations(["a_new_operation"], sources) == ["a_new_operation"]  # the check can fail
    assert unnamed_operations(PORT_OPERATIONS, sources) == [], "add a contract test (tests/contract/test_port_*.py)"


def test_engine_service_api_and_cli_type_against_the_ports_not_the_sql_implementation() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "storeflow"
    offenders = [f"{path.relative_to(src)}:{n}" for part in ("engine", "service", "api", "cli")
                 for path in sorted((src / part).rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if "storeflow.store.sql" in line or re.search(r"\btx\.conn\b|\bSqlTx\b", line)]
    assert offenders == [], "use StoreTx and named port operations (storeflow.store.ports)"
