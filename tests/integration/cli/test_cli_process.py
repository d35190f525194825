"""The installed ``storeflow`` console script as real processes: init + flows validate, and serve
(API + worker) answering an event and shutting down cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cli_testing import BAD_FLOW, GOOD_FLOW


def storeflow_script() -> str:
    beside = Path(sys.executable).parent / "storeflow"
    found = str(beside) if beside.is_file() else shutil.which("storeflow")
    assert found, "the storeflow console script is not installed (pip install -e .)"
    return found


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLOW_")}
    env["COLUMNS"] = "200"
    return env


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([storeflow_script(), *args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=120, check=False)


def test_console_script_init_and_validate(tmp_path: Path) -> None:
    init = run("init", "--database-url", f"sqlite:///{tmp_path}/t.db", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert re.search(r"sf_priv_\S{43}", init.stdout) and re.search(r"sf_pub_\S{43}", init.stdout)
    assert (tmp_path / "storeflow.toml").is_file()

    again = run("init", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip() == "error: storeflow.toml already exists; use --force to overwrite it " \
                                   "(its webhook secret changes)"

    (tmp_path / "good.yaml").write_text(GOOD_FLOW)
    (tmp_path / "bad.yaml").write_text(BAD_FLOW)
    ok = run("flows", "validate", "good.yaml", cwd=tmp_path)
    assert (ok.returncode, ok.stdout.strip(), ok.stderr) == (0, "ok  good.yaml  (tag-buyers, 2 steps)", "")

    bad = run("flows", "validate", "good.yaml", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert lines[0] == "ok  good.yaml  (tag-buyers, 2 steps)"
    assert [ln.split(":")[1] for ln in lines[1:]] == ["4", "6", "8"]
    assert bad.stderr.strip() == "error: 1 of 2 flow files is invalid (3 problems)"
    assert "Traceback" not in bad.stderr


def _read_until(proc: subprocess.Popen[str], pattern: str, deadline: float) -> tuple[re.Match[str], str]:
    seen = ""
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        text = proc.stdout.readline()
        if not text:
            break
        seen += text
        found = re.search(pattern, seen)
        if found:
            return found, seen
    raise AssertionError(f"no {pattern!r} in output:\n{seen}")


@pytest.mark.slow
def test_serve_takes_an_event_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    init = run("init", "--database-url", f"sqlite:///{tmp_path}/t.db", "--json", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    public = json.loads(init.stdout)["keys"]["public"]["secret"]
    with subprocess.Popen([storeflow_script(), "serve", "--port", "0"], cwd=tmp_path, env=clean_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            found, banner = _read_until(proc, r"listening on (http://127\.0\.0\.1:\d+)[\s\S]*Press Ctrl\+C",
                                        time.monotonic() + 60)
            base = found[1]
            assert f'curl -X POST {base}/v1/events -H "Authorization: Bearer $STOREFLOW_KEY"' in banner
            body = json.dumps({"type": "checkout_started", "email": "ana@example.com",
                               "properties": {"cart_id": "c-1", "total": "10", "currency": "USD"}}).encode()
            request = urllib.request.Request(f"{base}/v1/events", data=body, method="POST",
                                             headers={"Authorization": f"Bearer {public}",
                                                      "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 202
                assert json.loads(response.read())["status"] == "accepted"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "storeflow stopped" in out
    assert "Traceback" not in err
