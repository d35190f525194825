"""Step ids over HTTP: uploaded flows come back with an id on every step, a layout-only upload
changes no version, and per-step statistics are keyed by step id."""

from __future__ import annotations

import json

from api_harness import Api, checkout

FLOW = """\
id: cart-steps
name: Cart steps
status: live
trigger:
  event: checkout_started
steps:
  - action: tag
    tags: [cart]
  - wait: 1h
"""


def test_uploaded_steps_get_ids_and_layout_changes_no_version(api: Api) -> None:
    assert api.upload_flow(FLOW).status_code == 201
    shown = api.client.get("/v1/flows/cart-steps", headers=api.auth).json()
    ids = [step["id"] for step in shown["definition"]["steps"]]
    assert len(ids) == 2 and ids[0].startswith("tag-") and ids[1].startswith("wait-")

    document = {**shown["definition"], "layout": {"nodes": {ids[1]: {"x": 10, "y": 20}}}}
    moved = api.client.post("/v1/flows", content=json.dumps(document),
                            headers={**api.auth, "Content-Type": "application/json"})
    assert moved.status_code == 200, moved.text
    assert moved.json() == {"flow_id": "cart-steps", "version": 1, "change": "layout", "status": "live"}
    shown = api.client.get("/v1/flows/cart-steps", headers=api.auth).json()
    assert shown["definition"]["layout"] == {"nodes": {ids[1]: {"x": 10, "y": 20}}}

    bad = api.client.post("/v1/flows", content=json.dumps({**document, "layout": {"nodes": {ids[1]: {"x": "left"}}}}),
                          headers={**api.auth, "Content-Type": "application/json"})
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["path"] == f"layout.nodes.{ids[1]}.x"


def test_per_step_statistics(api: Api) -> None:
    api.upload_flow(FLOW)
    assert api.client.post("/v1/events", json=checkout(), headers=api.auth).status_code in (200, 202)
    api.sf.drain()
    resp = api.client.get("/v1/flows/cart-steps/steps", headers=api.auth)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["version"] == 1
    tag, wait = body["steps"]
    assert (tag["path"], tag["kind"], tag["action"], tag["runs"], tag["log"]) == ("steps[0]", "action", "tag", 1,
                                                                                   {"done": 1})
    assert (wait["path"], wait["kind"], wait["waiting"], wait["log"]) == ("steps[1]", "wait", 1, {"waiting": 1})
    assert api.client.get("/v1/flows/nope/steps", headers=api.auth).status_code == 404
