"""Runs over HTTP after a triggering event and a drain."""

from __future__ import annotations

from api_harness import CART_FLOW, Api, checkout


def _run_one(api: Api) -> tuple[str, str]:
    assert api.upload_flow(CART_FLOW).status_code == 201
    resp = api.client.post("/v1/events", json=checkout("t1"), headers=api.public_auth)
    assert resp.status_code == 202, resp.text
    (run_id,) = resp.json()["runs_started"]
    api.sf.drain()
    return run_id, resp.json()["profile_id"]


def test_runs_list_and_show(api: Api) -> None:
    run_id, profile_id = _run_one(api)

    listed = api.client.get("/v1/runs", headers=api.auth)
    assert listed.status_code == 200
    runs = listed.json()["runs"]
    assert [r["id"] for r in runs] == [run_id]
    assert runs[0]["flow_id"] == "cart-tag"
    assert runs[0]["profile_id"] == profile_id
    assert runs[0]["status"] == "completed"

    shown = api.client.get(f"/v1/runs/{run_id}", headers=api.auth)
    assert shown.status_code == 200
    run = shown.json()
    assert run["id"] == run_id
    assert run["messages"] == []
    (step,) = run["steps"]
    assert step["step_key"] == "tag-cart"
    assert step["kind"] == "action:tag"
    assert step["status"] == "done"
    assert step["detail"]["added"] == ["cart"]  # what the step did
    assert step["detail"]["id"] == profile_id

    profile = api.client.get(f"/v1/profiles/{profile_id}", headers=api.auth).json()
    assert profile["runs"][0]["id"] == run_id


def test_runs_filters_and_paging(api: Api) -> None:
    run_id, profile_id = _run_one(api)
    h = api.auth
    assert [r["id"] for r in api.client.get("/v1/runs", params={"flow_id": "cart-tag"}, headers=h)
            .json()["runs"]] == [run_id]
    assert api.client.get("/v1/runs", params={"flow_id": "other"}, headers=h).json()["runs"] == []
    assert api.client.get("/v1/runs", params={"status": "failed"}, headers=h).json()["runs"] == []
    assert len(api.client.get("/v1/runs", params={"profile_id": profile_id}, headers=h).json()["runs"]) == 1
    assert api.client.get("/v1/runs", params={"offset": 1}, headers=h).json()["runs"] == []
    bad = api.client.get("/v1/runs", params={"limit": 0}, headers=h)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "limit"]


def test_unknown_run_is_404(sqlite_api: Api) -> None:
    resp = sqlite_api.client.get("/v1/runs/run_missing", headers=sqlite_api.auth)
    assert resp.status_code == 404
    assert "run_missing" in resp.json()["detail"]
