"""``/v1/campaigns`` (both backends) and ``storeflow campaigns`` (SQLite): create, preview (writes
nothing), schedule, show with the report, cancel, list; bad input answered with every problem."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from tests.integration.campaigns.conftest import Shop
from tests.integration.campaigns.members import add_segment
from typer.testing import CliRunner

from storeflow.app import Storeflow
from storeflow.cli.main import app as cli_app
from storeflow.clock import VirtualClock
from storeflow.settings import Settings
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import campaign_recipients, campaigns, outbox

NEWSLETTER = """
id: march-newsletter
name: March newsletter
audience: {include: [subscribers], exclude: [unengaged]}
message:
  channel: email
  subject: "March news for {{ profile.first_name or 'you' }}"
  html: "<p>Hi {{ profile.first_name }}</p><p><a href='https://shop.example/new'>New in</a></p>"
schedule: {at: "2026-03-05T10:00"}
"""


def _people(sf: Storeflow, n: int) -> list[str]:
    results = sf.ingest([{"type": "identified", "email": f"n{i}@example.com", "id": f"n-{i}",
                          "profile": {"first_name": f"N{i}", "consent": {"email": "subscribed"}}} for i in range(n)])
    return [str(r.profile_id) for r in results]


def _rows(sf: Storeflow) -> tuple[int, int, int]:
    with sf.store.read() as tx:
        conn = sql_connection(tx)
        return tuple(int(conn.execute(select(func.count()).select_from(t)).scalar_one())  # type: ignore[return-value]
                     for t in (campaigns, campaign_recipients, outbox))


def test_the_api_creates_previews_schedules_reports_and_cancels(shop: Shop, clock: VirtualClock) -> None:
    _, key = shop.sf.keys.create("private", "tests")
    auth = {"Authorization": f"Bearer {key}"}
    ids = _people(shop.sf, 5)
    add_segment(shop.sf.store, "subscribers", ids, clock.now())
    add_segment(shop.sf.store, "unengaged", ids[:1], clock.now())
    client = shop.client

    created = client.post("/v1/campaigns", content=NEWSLETTER, headers={**auth, "content-type": "application/yaml"})
    assert created.status_code == 201, created.text
    assert created.json() == {"campaign_id": "march-newsletter", "change": "created", "status": "draft"}

    before = _rows(shop.sf)
    preview = client.post("/v1/campaigns/march-newsletter/preview", headers=auth)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["audience_size"] == 4 and body["unknown_segments"] == []
    assert body["sample"]["subject"].startswith("March news for N") and "New in" in body["sample"]["html"]
    assert _rows(shop.sf) == before  # preview never writes

    scheduled = client.post("/v1/campaigns/march-newsletter/schedule", headers=auth)
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["send_at"] == "2026-03-05T03:00:00+00:00"  # 10:00 in the store's Asia/Jakarta
    again = client.post("/v1/campaigns/march-newsletter/schedule", json={"now": True}, headers=auth)
    assert again.status_code == 409

    shop.sf.run_until(clock.now() + timedelta(days=4))
    shown = client.get("/v1/campaigns/march-newsletter", headers=auth).json()
    assert shown["status"] == "sent"
    report = shown["report"]
    assert (report["audience_size"], report["sent"], report["skipped"]) == (4, 4, 0)
    assert [c["id"] for c in client.get("/v1/campaigns", headers=auth).json()["campaigns"]] == ["march-newsletter"]
    assert client.post("/v1/campaigns/march-newsletter/cancel", headers=auth).status_code == 409
    assert client.get("/v1/campaigns/nope", headers=auth).status_code == 404
    assert client.post("/v1/campaigns", content=NEWSLETTER, headers={"content-type": "application/yaml"}
                       ).status_code == 401


def test_the_api_lists_every_problem_and_refuses_an_unknown_audience(shop: Shop, clock: VirtualClock) -> None:
    _, key = shop.sf.keys.create("private", "tests")
    auth = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    bad = {"id": "Bad Id", "name": "", "audience": {"include": []},
           "message": {"channel": "email", "subject": "{{ oops", "to": "x@example.com"},
           "schedule": {"local_time": "25:00"}, "throttle": 0, "smart_sending": -1}
    answer = shop.client.post("/v1/campaigns", json=bad, headers=auth)
    assert answer.status_code == 422
    paths = {p["path"] for p in answer.json()["problems"]}
    assert {"id", "name", "audience.include", "message.subject", "message.to", "schedule.local_time", "schedule",
            "throttle", "smart_sending"} <= paths, paths

    ghost = NEWSLETTER.replace("[subscribers]", "[ghost]")
    answer = shop.client.post("/v1/campaigns", content=ghost, headers={**auth, "content-type": "application/yaml"})
    assert answer.status_code == 422
    assert [p["path"] for p in answer.json()["problems"]] == ["audience.include[0]", "audience.exclude[0]"]
    assert _rows(shop.sf) == (0, 0, 0)


def test_the_cli_runs_a_campaign_from_a_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    clock = VirtualClock()
    sf = Storeflow(Settings(database_url=url), clock=clock)
    try:
        add_segment(sf.store, "subscribers", _people(sf, 3), clock.now())
        add_segment(sf.store, "unengaged", [], clock.now())
    finally:
        sf.close()
    doc = tmp_path / "newsletter.yaml"
    doc.write_text(NEWSLETTER.replace('{at: "2026-03-05T10:00"}', '{at: "2030-01-01T10:00"}'))
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli_app, ["--database-url", url, *args], env={"STOREFLOW_CONFIG": None})
        assert result.exit_code == 0, result.output
        return result.output

    assert "created (draft)" in run("campaigns", "create", str(doc))
    assert "audience of 3" in run("campaigns", "preview", "march-newsletter")
    assert "scheduled for 2030-01-01" in run("campaigns", "schedule", "march-newsletter")
    assert "march-newsletter" in run("campaigns", "list")
    assert "status scheduled" in run("campaigns", "show", "march-newsletter")
    assert "cancelled" in run("campaigns", "cancel", "march-newsletter")
    failed = runner.invoke(cli_app, ["--database-url", url, "campaigns", "schedule", "march-newsletter", "--now"],
                           env={"STOREFLOW_CONFIG": None})
    assert failed.exit_code == 1 and "only a draft can be scheduled" in failed.output
