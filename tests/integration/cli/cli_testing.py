"""Helpers for the CLI tests (a module with a unique name, imported by the test files)."""

from __future__ import annotations

from collections.abc import Callable

from typer.testing import Result

Invoke = Callable[..., Result]

GOOD_FLOW = """\
id: tag-buyers
name: Tag buyers
status: live
trigger:
  event: order_placed
steps:
  - action: tag
    tags: [buyer]
  - action: note
    text: tagged a buyer
"""

# Three problems on lines 4, 6 and 8.
BAD_FLOW = """\
id: broken
name: Broken
trigger:
  event: order_placd
steps:
  - action: tagg
    tags: [x]
  - wait: 0d
"""


def check(result: Result, code: int = 0) -> Result:
    """Assert the exit code, showing the output when it differs."""
    assert result.exit_code == code, (
        f"exit {result.exit_code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
        f"exception: {result.exception!r}"
    )
    return result


def assert_one_error_line(result: Result) -> str:
    """Exit 1 and exactly one ``error: ...`` line on stderr, no traceback."""
    check(result, 1)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]
