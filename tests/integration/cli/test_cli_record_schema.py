"""storeflow flows validate / apply refuse fields that the record schema does not declare."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cli_testing import Invoke, check

Write = Callable[[str, str], Path]

CART_TOTAL = """\
id: big-carts
name: Big carts
trigger:
  event: checkout_started
  filter: {field: cart.total, gte: 20}
steps:
  - if: {field: cart.converted, gte: 1}
    then:
      - action: tag
        tags: [big-cart]
"""


def test_validate_refuses_an_unknown_field_and_a_misfit_operator(run_cli: Invoke, write: Write) -> None:
    write("flows/big-carts.yaml", CART_TOTAL)

    result = check(run_cli("flows", "validate", "flows/big-carts.yaml"), 1)

    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("flows/big-carts.yaml:")]
    assert lines == [
        'flows/big-carts.yaml:5: trigger.filter.field: unknown field "total" of cart; did you mean "value"? '
        "known fields of cart: checkout_url, converted, converted_at, currency, id, item_count, items, kind, "
        "last_activity_at, order_id, value",
        'flows/big-carts.yaml:7: steps[0].if.gte: cart.converted is true/false: "gte" does not apply to it; '
        "operators for it: eq, ne, in, not_in, exists",
    ]
    assert result.stderr.strip() == "error: 1 of 1 flow files is invalid (2 problems)"


def test_the_fixed_flow_validates_and_applies(cli: Invoke, write: Write) -> None:
    fixed = CART_TOTAL.replace("cart.total", "cart.value").replace("gte: 1}", "eq: false}")
    write("flows/big-carts.yaml", fixed)
    check(cli("flows", "validate", "flows/big-carts.yaml"))
    applied = json.loads(check(cli("flows", "apply", "flows", "--json")).stdout)
    assert [(item["flow_id"], item["change"]) for item in applied] == [("big-carts", "created")]


def test_apply_applies_nothing_with_an_unknown_field(cli: Invoke, write: Write) -> None:
    write("flows/big-carts.yaml", CART_TOTAL)
    result = check(cli("flows", "apply", "flows"), 1)
    assert "unknown field" in result.stdout and "nothing applied" in result.stderr
    assert json.loads(check(cli("flows", "list", "--json")).stdout) == []
