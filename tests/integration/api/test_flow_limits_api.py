"""POST /v1/flows and /v1/flows/validate refuse hostile flow documents with 422 and the path."""

from __future__ import annotations

import json
import time
from typing import Any

from api_harness import Api

BILLION_LAUGHS = "".join(
    f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9 if prev else ['"lol"'] * 9) + "]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


def post(api: Api, body: str, media: str) -> tuple[int, dict[str, Any]]:
    started = time.perf_counter()
    resp = api.client.post("/v1/flows/validate", content=body, headers={**api.auth, "Content-Type": media})
    assert time.perf_counter() - started < 5
    return resp.status_code, resp.json()


def test_deep_json_and_yaml_are_422_with_the_path(sqlite_api: Api) -> None:
    status, body = post(sqlite_api, '{"steps": ' + "[" * 100_000 + "]" * 100_000 + "}", "application/json")
    assert status == 422
    [problem] = body["problems"]
    assert problem["path"].startswith("steps[0][0]")
    assert "more than 64 levels" in problem["message"]

    status, body = post(sqlite_api, "steps: " + "[" * 10_000 + "]" * 10_000, "application/yaml")
    assert status == 422
    assert "more than 64 levels" in str(body["detail"])


def test_an_alias_bomb_is_422(sqlite_api: Api) -> None:
    status, body = post(sqlite_api, BILLION_LAUGHS, "application/yaml")
    assert status == 422
    assert "YAML aliases counted as expanded" in str(body["detail"])


def test_templates_are_not_evaluated_when_a_flow_is_validated(sqlite_api: Api) -> None:
    step = {"action": "email", "subject": "{{ '%0100000000d' % 1 }}", "html": "{{ 'a'|center(100000000) }}"}
    flow = {"id": "f", "name": "F", "trigger": {"event": "order_placed"}, "steps": [step]}
    status, body = post(sqlite_api, json.dumps(flow), "application/json")
    assert (status, body["valid"]) == (200, True)


def test_a_webhook_to_the_metadata_endpoint_is_422(sqlite_api: Api) -> None:
    step = {"action": "webhook", "url": "http://169.254.169.254/latest/meta-data/"}
    flow = {"id": "f", "name": "F", "trigger": {"event": "order_placed"}, "steps": [step]}
    status, body = post(sqlite_api, json.dumps(flow), "application/json")
    assert status == 422
    [problem] = body["problems"]
    assert problem["path"] == "steps[0].url"
    assert "cloud metadata endpoint" in problem["message"]
