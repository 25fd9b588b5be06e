#!/usr/bin/env bash
# Set up and run the whole default test suite: lint, type check, unit and integration tests.
# Benchmarks (tests/benchmarks) are not part of it. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh dev
echo "== ruff" >&2
ruff check .
ruff format --check .
echo "== mypy (routing, geodata)" >&2
mypy
echo "== pytest" >&2
pytest "$@"
