#!/usr/bin/env bash
# Set up and run the whole default test suite: lint, type check, unit and integration tests.
# Benchmarks (tests/benchmarks) are not part of it. Extra arguments go to pytest.
# COURIER_TEST_PROCESSES (default 2) test processes share the tests, a file at a time; 0 runs
# them all in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh dev
# A machine may set PYTHONDONTWRITEBYTECODE: pytest then rewrites the assertions of its plugins
# (Hypothesis, Schemathesis: some 230 modules) again in every test process, about 8 s each.
unset PYTHONDONTWRITEBYTECODE
echo "== ruff" >&2
ruff check .
ruff format --check .
echo "== mypy (routing, geodata, api)" >&2
mypy
echo "== pytest" >&2
processes="${COURIER_TEST_PROCESSES:-2}"
if [ "$processes" = 0 ]; then
    pytest "$@"
else
    pytest -n "$processes" --dist loadfile "$@"
fi
