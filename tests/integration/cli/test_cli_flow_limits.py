"""``storeflow flows validate`` on hostile files: every file is reported, quickly, without a traceback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_testing import BAD_FLOW, GOOD_FLOW, Invoke, check

Write = Callable[[str, str], Path]

ALIAS_BOMB = "".join(
    f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9 if prev else ['"lol"'] * 9) + "]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


def deep_template_flow() -> str:
    html = "{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}"
    step = {"action": "email", "subject": "Hi", "html": html}
    return json.dumps({"id": "deep-template", "name": "T", "trigger": {"event": "order_placed"}, "steps": [step]})


def test_validate_reports_every_file_even_when_some_hit_a_limit(cli: Invoke, write: Write, workdir: Path) -> None:
    (workdir / "flows").mkdir()
    (workdir / "flows/a-deep.yaml").write_text("id: a\nsteps: " + "[" * 10_000 + "]" * 10_000 + "\n")
    (workdir / "flows/b-deep.json").write_text('{"id": "b", "steps": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (workdir / "flows/c-laughs.yaml").write_text(ALIAS_BOMB)
    (workdir / "flows/d-template.json").write_text(deep_template_flow())
    (workdir / "flows/e-long-id.json").write_text('{"id": ' + "9" * 5000 + "}")
    write("flows/f-bad.yaml", BAD_FLOW)
    write("flows/g-good.yaml", GOOD_FLOW)

    started = time.perf_counter()
    result = check(cli("flows", "validate", "flows"), 1)
    assert time.perf_counter() - started < 10

    out = result.stdout.splitlines()
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)

    def lines(name: str) -> list[str]:
        return [line for line in out if line.startswith(f"flows/{name}:")]

    assert any("steps[0][0][0]" in line and "more than 64 levels" in line for line in lines("a-deep.yaml")), out
    assert any("steps[0][0][0]" in line and "more than 64 levels" in line for line in lines("b-deep.json")), out
    assert any("values (YAML aliases counted as expanded)" in line for line in lines("c-laughs.yaml")), out
    assert any("steps[0].html" in line and "brackets are nested" in line for line in lines("d-template.json")), out
    assert any(": id: a number written with 5,000 characters" in line for line in lines("e-long-id.json")), out
    assert len(lines("f-bad.yaml")) == 3, out
    assert "ok  flows/g-good.yaml  (tag-buyers, 2 steps)" in out
    assert result.stderr.startswith("error: 6 of 7 flow files are invalid")


def test_validate_json_output_lists_every_file(cli: Invoke, workdir: Path) -> None:
    (workdir / "flows").mkdir()
    (workdir / "flows/a-deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (workdir / "flows/b-good.yaml").write_text(GOOD_FLOW)

    result = check(cli("flows", "validate", "--json", "flows"), 1)

    files = json.loads(result.stdout)
    assert [(f["file"], f["ok"]) for f in files] == [("flows/a-deep.json", False), ("flows/b-good.yaml", True)]
    assert "more than 64 levels" in files[0]["problems"][0]


HOOK = """\
id: hook-{name}
name: Hook
trigger: {{event: order_placed}}
steps:
  - action: webhook
    url: {url}
"""


def test_validate_refuses_webhooks_to_private_addresses_unless_the_settings_allow_them(
    run_cli: Invoke, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("flows/a.yaml", HOOK.format(name="a", url="http://169.254.169.254/latest/meta-data"))
    write("flows/b.yaml", HOOK.format(name="b", url="http://10.0.0.5/hook"))
    write("flows/c.yaml", HOOK.format(name="c", url="https://hooks.example.com/hook"))

    out = check(run_cli("flows", "validate", "flows"), 1).stdout.splitlines()
    assert any(ln.startswith("flows/a.yaml:6: steps[0].url: ") and "cloud metadata endpoint" in ln for ln in out)
    assert any(
        ln.startswith("flows/b.yaml:6: steps[0].url: ") and "STOREFLOW_WEBHOOK_ALLOW_PRIVATE" in ln for ln in out
    )
    assert "ok  flows/c.yaml  (hook-c, 1 step)" in out

    monkeypatch.setenv("STOREFLOW_WEBHOOK_ALLOW_PRIVATE", "true")
    out = check(run_cli("flows", "validate", "flows"), 1).stdout.splitlines()
    assert any(ln.startswith("flows/a.yaml:6:") for ln in out)  # metadata endpoints need the allowlist
    assert "ok  flows/b.yaml  (hook-b, 1 step)" in out
