"""Schemathesis over the whole OpenAPI document: no request an API client can build from it gets a
5xx, with a private key and with a public key, on SQLite and PostgreSQL.

Bounded so it stays a unit of the ordinary suite: a fixed number of examples per operation, derived
from a fixed seed (the same requests on every run; a failure is reproducible), no example database.
Rate limits are raised out of the way (they answer 429, never 5xx, and would hide the handlers).
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import hypothesis
import pytest
from api_harness import Api, ApiFactory
from hypothesis import HealthCheck, given

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import schemathesis

MAX_EXAMPLES = 20
LIMITS = {"rate_limit_private_per_s": 1e9, "rate_limit_private_burst": 10**9,
          "rate_limit_public_per_s": 1e9, "rate_limit_public_burst": 10**9}


def server_errors(api: Api, headers: dict[str, str]) -> tuple[list[str], Counter[int]]:
    """Every operation, MAX_EXAMPLES cases each: the 5xx answers, described, and every status seen."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    found: list[str] = []
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        probe(result.ok(), headers, found, statuses)
    return found, statuses


def probe(operation: Any, headers: dict[str, str], found: list[str], statuses: Counter[int]) -> None:
    @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            found.append(f"{operation.label}: {response.status_code} for {case.as_curl_command()}")

    run()


@pytest.fixture
def fuzz_api(make_api: ApiFactory) -> Api:
    return make_api(**LIMITS)


@pytest.mark.parametrize("key", ["private", "public"])
def test_no_request_built_from_the_openapi_document_gets_a_5xx(fuzz_api: Api, key: str) -> None:
    headers = fuzz_api.auth if key == "private" else fuzz_api.public_auth
    errors, statuses = server_errors(fuzz_api, headers)
    assert errors == []
    assert sum(n for status, n in statuses.items() if status < 300) >= 20, statuses  # handlers were reached
