"""storeflow init: config file, database, the first two keys; refuses to overwrite."""

from __future__ import annotations

import base64
import re
import tomllib
from pathlib import Path

from cli_testing import Invoke, assert_one_error_line, check

from storeflow.app import Storeflow
from storeflow.settings import Settings


def test_init_writes_config_creates_database_and_prints_two_keys(run_cli: Invoke, workdir: Path) -> None:
    result = check(run_cli("init", "--timezone", "Asia/Jakarta", "--currency", "idr"))

    config = tomllib.loads((workdir / "storeflow.toml").read_text())
    assert config["database_url"] == "sqlite:///storeflow.db"
    assert config["timezone"] == "Asia/Jakarta"
    assert config["currency"] == "IDR"
    secret = config["webhook_secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert (workdir / "storeflow.toml").stat().st_mode & 0o077 == 0  # holds a secret: owner only
    assert (workdir / "storeflow.db").is_file()

    private = re.findall(r"sf_priv_[A-Za-z0-9_-]{43}", result.stdout)
    public = re.findall(r"sf_pub_[A-Za-z0-9_-]{43}", result.stdout)
    assert len(private) == 1 and len(public) == 1
    assert "shown only now" in result.stdout
    assert secret not in result.stdout

    sf = Storeflow(Settings(database_url=f"sqlite:///{workdir}/storeflow.db"))
    try:
        keys = {k["kind"]: k for k in sf.keys.list()}
        assert set(keys) == {"private", "public"}
        assert (sf.keys.authenticate(private[0]) or {}).get("kind") == "private"
        assert (sf.keys.authenticate(public[0]) or {}).get("kind") == "public"
    finally:
        sf.close()


def test_init_refuses_an_existing_config_unless_forced(run_cli: Invoke, workdir: Path) -> None:
    check(run_cli("init"))
    before = (workdir / "storeflow.toml").read_text()

    line = assert_one_error_line(run_cli("init"))
    assert "storeflow.toml already exists" in line and "--force" in line
    assert (workdir / "storeflow.toml").read_text() == before

    forced = check(run_cli("init", "--force", "--currency", "BRL"))
    assert "sf_priv_" in forced.stdout
    after = tomllib.loads((workdir / "storeflow.toml").read_text())
    assert after["currency"] == "BRL"
    assert after["webhook_secret"] != tomllib.loads(before)["webhook_secret"]


def test_init_rejects_a_bad_time_zone_and_writes_nothing(run_cli: Invoke, workdir: Path) -> None:
    line = assert_one_error_line(run_cli("init", "--timezone", "Mars/Olympus"))
    assert "Mars/Olympus" in line and "IANA" in line
    assert not (workdir / "storeflow.toml").exists()


def test_init_uses_the_global_database_url_and_config_path(run_cli: Invoke, workdir: Path) -> None:
    url = f"sqlite:///{workdir}/other.db"
    (workdir / "conf").mkdir()
    check(run_cli("--config", "conf/sf.toml", "--database-url", url, "init"))
    config = tomllib.loads((workdir / "conf" / "sf.toml").read_text())
    assert config["database_url"] == url
    assert (workdir / "other.db").is_file()
    assert not (workdir / "storeflow.toml").exists()
    # The other commands find the database through the same config file.
    listed = check(run_cli("--config", "conf/sf.toml", "keys", "list", "--json"))
    assert '"private"' in listed.stdout
