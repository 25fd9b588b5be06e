#!/usr/bin/env bash
# Set up and run the demo: the synthetic Kon Tum province and a realistic day of courier jobs,
# planned end to end on the embedded defaults. Outputs go to ./demo-out (plan.geojson,
# itineraries/, unassigned.csv, summary.json, map.png, and the input files in demo-out/input).
# Extra arguments go to `courier demo` (see `courier demo --help`), e.g. --jobs 2000 --nodes 100000.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh dev
courier demo --out demo-out "$@"
