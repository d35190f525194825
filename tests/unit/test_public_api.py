"""The public API of the ``storeflow`` package is pinned: what ``storeflow.__all__`` lists is what a
user may import from it, each name imports, the package docstring's example runs, and importing the
package loads none of the engine's private modules (they load when ``Storeflow`` is first used)."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import pytest

import storeflow

PUBLIC = ["Clock", "Settings", "Storeflow", "StoreflowError", "SystemClock", "VirtualClock", "__version__"]


def test_all_is_the_pinned_list() -> None:
    assert storeflow.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_imports_from_the_package(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from storeflow import {name}", namespace)
    assert namespace[name] is getattr(storeflow, name)


def test_public_names_are_the_engines_own() -> None:
    from storeflow import Settings, Storeflow
    from storeflow.app import Storeflow as AppStoreflow
    from storeflow.settings import Settings as SettingsClass

    assert Storeflow is AppStoreflow and Settings is SettingsClass


def test_unknown_names_are_refused_with_the_public_list() -> None:
    with pytest.raises(AttributeError, match="Storeflow"):
        storeflow.Worker  # noqa: B018 - not public: storeflow.engine.worker


def test_the_package_docstring_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tests = doctest.DocTestFinder().find(storeflow, "storeflow")
    assert tests and tests[0].examples, "the package docstring has no example"
    result = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS).run(tests[0])
    assert result.failed == 0 and result.attempted >= 4


def test_importing_the_package_loads_no_private_module() -> None:
    code = ("import sys, storeflow; print(sorted(m for m in sys.modules if m.startswith('storeflow.') "
            "and m.split('.')[1] in ('app', 'engine', 'store', 'channels', 'api', 'service')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
