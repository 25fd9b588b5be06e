"""Property-based run of every operation in the OpenAPI schema (schemathesis): never a 5xx."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from api.config import Settings
from api.main import create_app
from tests.integration.conftest import Stack, new_token

schema = schemathesis.from_dict(
    create_app(Settings(redis_url="redis://unused", data_dir="unused")).openapi(),
    base_url="http://testserver",
    force_schema_version="30",
)


@pytest.fixture(scope="module")
def caller(day_stack: Stack) -> Stack:
    return day_stack


def _call(case: Any, caller: Stack) -> Any:
    """Send a generated request as the dispatcher and return the response."""
    token = caller.tokens["dispatcher"]
    if case.path == "/auth/logout":  # sign out a session of its own, not the one the run uses
        token = new_token(caller.settings, "dispatcher")
    kwargs = case.as_transport_kwargs(
        base_url="http://testserver", headers={"Authorization": f"Bearer {token}"}
    )
    kwargs.pop("cookies", None)
    return caller.client.request(
        **{
            k: v
            for k, v in kwargs.items()
            if k in ("method", "url", "headers", "params", "json", "content", "files", "data")
        }
    )


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_operation_answers_5xx(case: Any, caller: Stack) -> None:
    """Whatever the generated input, as a dispatcher, every operation answers below 500 with JSON errors."""
    response = _call(case, caller)
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        assert "detail" in response.json()


def test_schema_run_reached_the_handlers(caller: Stack) -> None:
    """Generated requests are authenticated: many succeed and many are rejected as invalid.

    The test sends its own generated requests (a few per operation), so it holds alone.
    """
    seen: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def send(case: Any) -> None:
            seen[_call(case, caller).status_code // 100 * 100] += 1

        send()
    assert seen[200] >= 20, seen
    assert seen[400] >= 20, seen
    assert seen[500] == 0, seen
