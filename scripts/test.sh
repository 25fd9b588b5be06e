#!/usr/bin/env bash
# Set up and run the whole default test suite: lint, type check, unit and integration tests.
# Benchmarks (tests/benchmarks) are not part of it. Extra arguments go to pytest.
# COURIER_TEST_PROCESSES (default 2) test processes share the tests, a file at a time; 0 runs
# them all in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh dev
echo "== ruff" >&2
ruff check .
ruff format --check .
echo "== mypy (routing, geodata)" >&2
mypy
echo "== pytest" >&2
processes="${COURIER_TEST_PROCESSES:-2}"
if [ "$processes" = 0 ]; then
    pytest "$@"
else
    pytest -n "$processes" --dist loadfile "$@"
fi
