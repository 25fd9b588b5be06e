"""Pytest configuration of the routing unit tests."""

from __future__ import annotations

import pytest

# The schemathesis pytest plugin (installed for the API tests) imports jsonschema's
# deprecated RefResolutionError lazily inside each test call; with filterwarnings = error that
# turns every test into a failure. This is third-party internals, not routing code.
_SCHEMATHESIS_IMPORT = (
    "ignore:jsonschema.exceptions.RefResolutionError is deprecated:DeprecationWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/unit/routing" in str(item.path):
            item.add_marker(pytest.mark.filterwarnings(_SCHEMATHESIS_IMPORT))
