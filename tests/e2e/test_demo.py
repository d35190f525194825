"""``storeflow demo`` end to end: a small store for ten days, every sample flow acting, real .eml files."""

from __future__ import annotations

import email
import re
import sqlite3
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, or_, select
from typer.testing import CliRunner

from storeflow.cli.main import app
from storeflow.segments.builtin import templates
from storeflow.store.tables import campaign_recipients, outbox, profiles, segment_membership_log

FLOWS = ("abandoned-cart", "hide-sold-out", "low-stock-alert", "republish-restocked", "vip", "welcome")
# A thousand customers for ten days: smaller stores sell too little in ten days for the stock flows to
# fire whatever the seed (checked for seeds 1 to 7).
ARGS = ["--no-serve", "--customers", "1000", "--products", "30", "--days", "10", "--seed", "7",
        "--currency", "IDR", "--start", "2026-03-02"]


def _count(output: str, label: str) -> int:
    match = re.search(rf"{re.escape(label)}\s*│\s*([\d,]+)", output)
    assert match, f"{label!r} is not in the summary:\n{output}"
    return int(match.group(1).replace(",", ""))


@pytest.mark.slow
def test_demo_runs_a_small_store_and_every_sample_flow_acts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no storeflow.toml from around the test
    folder = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(folder), *ARGS], env={"COLUMNS": "200"})
    output = result.output
    assert result.exit_code == 0, output + repr(result.exception)

    for flow in FLOWS:  # the summary shows runs started per flow
        match = re.search(rf"│ {flow}\s*│\s*([\d,]+)", output)
        assert match and int(match.group(1).replace(",", "")) > 0, flow
    assert _count(output, "products hidden (distinct)") > 0
    assert _count(output, "products republished (distinct)") > 0
    assert _count(output, "orders") > 0
    for step in ("reminder-1", "welcome-1", "tell-team"):
        assert re.search(rf"│ {step}\s*│ email\s*│\s*[1-9]", output), step
    assert "events refused" not in output

    with sqlite3.connect(folder / "storeflow.db") as db:  # the store agrees with the summary
        runs = dict(db.execute("SELECT flow_id, count(*) FROM runs GROUP BY flow_id").fetchall())
        failed = db.execute("SELECT count(*) FROM runs WHERE status = 'failed'").fetchone()[0]
        hidden = db.execute("SELECT count(*) FROM run_steps WHERE kind = 'action:hide_product'").fetchone()[0]
    assert set(runs) == set(FLOWS) and all(runs.values())
    assert failed == 0
    assert hidden == _count(output, "products hidden (distinct)")

    files = sorted((folder / "mail").glob("*.eml"))
    assert files, "no .eml files"
    assert f"{len(files)} emails kept as .eml files" in output
    messages = [email.message_from_bytes(f.read_bytes(), policy=default) for f in files]
    assert all(m["Subject"] and m["To"] and m["Date"] for m in messages)
    to_team = [m for m in messages if m["To"] == "team@demo.store"]
    to_customers = [m for m in messages if m["To"] != "team@demo.store"]
    assert to_team and all(m["Subject"].startswith("Stok menipis:") for m in to_team)  # the store speaks id_ID
    assert to_customers and all(m["List-Unsubscribe"] for m in to_customers)  # marketing email
    assert any("keranjang" in m["Subject"] or "Selamat datang" in m["Subject"] for m in to_customers)
    body = to_customers[0].get_body(("plain",))
    assert body is not None and body.get_content().strip()
    _check_segments(output, folder)
    _check_campaign(output, folder, messages)


def _check_segments(output: str, folder: Path) -> None:
    """The segment table lists every built-in segment with the members the membership log records
    at the instant it names; the RFM cells hold every customer who ordered."""
    at = re.search(r"Segment members, [^(]*\((\d{4}-\d\d-\d\dT\d\d:\d\d)Z\)", output)
    assert at, output
    instant = datetime.fromisoformat(at.group(1)).replace(tzinfo=UTC)
    printed = {t.name: _count(output, t.name) for t in templates()}
    log = segment_membership_log.c
    engine = create_engine(f"sqlite:///{folder / 'storeflow.db'}")
    try:
        with engine.connect() as conn:
            stored = dict(conn.execute(
                select(log.segment_id, func.count()).where(
                    log.entered_at <= instant, or_(log.exited_at.is_(None), log.exited_at > instant))
                .group_by(log.segment_id)).all())
            buyers = conn.execute(select(func.count()).select_from(profiles).where(
                profiles.c.merged_into.is_(None), profiles.c.first_order_at <= instant)).scalar_one()
    finally:
        engine.dispose()
    assert printed == {name: stored.get(name, 0) for name in printed}
    assert 0 < sum(n for name, n in printed.items() if name.startswith("rfm-")) == buyers  # the cells split them
    for name in ("lifecycle-first-time-buyer", "lifecycle-subscriber", "engagement-engaged-30d",
                 "behaviour-recent-purchasers", "behaviour-bargain-hunters", "behaviour-cart-abandoners"):
        assert printed[name] > 0, name


def _check_campaign(output: str, folder: Path, messages: list[email.message.EmailMessage]) -> None:
    """The campaign report's figures are the store's: recipients frozen, outbox rows, opens, clicks;
    each message sent is an .eml file in the mailbox."""
    assert "Campaign demo-newsletter" in output
    audience = _count(output, "not in engagement-unengaged-90d")
    queued, sent, skipped = (_count(output, label) for label in ("messages queued", "sent", "skipped"))
    opened, clicked = _count(output, "opened"), _count(output, "clicked")
    assert audience > 0 and sent > 0 and opened > 0
    assert audience == sent + skipped + _count(output, "failed") and queued == sent
    engine = create_engine(f"sqlite:///{folder / 'storeflow.db'}")
    try:
        with engine.connect() as conn:
            frozen = conn.execute(select(func.count()).select_from(campaign_recipients)
                                  .where(campaign_recipients.c.campaign_id == "demo-newsletter")).scalar_one()
            rows = conn.execute(select(outbox.c.sent_at, outbox.c.opened_at, outbox.c.clicked_at)
                                .where(outbox.c.campaign_id == "demo-newsletter")).all()
    finally:
        engine.dispose()
    assert frozen == audience and len(rows) == queued
    assert sum(r.sent_at is not None for r in rows) == sent
    assert (sum(r.opened_at is not None for r in rows), sum(r.clicked_at is not None for r in rows)) == (
        opened, clicked)
    assert sum(1 for m in messages if str(m["Subject"]).startswith("Kabar terbaru dari Toko Rimba")) == sent


def test_a_store_too_small_for_an_audience_says_no_campaign_was_sent(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "tiny"
    result = CliRunner().invoke(app, ["demo", "--dir", str(folder), "--no-serve", "--customers", "5", "--products",
                                      "3", "--days", "1", "--start", "2026-03-02"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Segment members" in result.output
    assert "No campaign sent: campaign demo-newsletter: audience: the audience is empty" in result.output
