#!/usr/bin/env bash
# Set up and run the demo: the synthetic Kon Tum province and a realistic day of courier jobs,
# planned end to end on the embedded defaults. Outputs go to ./demo-out (plan.geojson,
# itineraries/, unassigned.csv, summary.json, map.png, and the input files in demo-out/input).
# Extra arguments go to `courier demo` (see `courier demo --help`), e.g. --jobs 2000 --nodes 100000.
#
# `bash scripts/demo.sh --serve` instead starts the service with today's demo day planned and
# published (`courier serve --demo`): open the printed addresses for the dispatcher, courier and
# manager pages. Extra arguments go to `courier serve` (e.g. --port 8080 --demo-jobs 300).
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo and the service need the project alone: no test tools, no browser.
source scripts/bootstrap.sh none
if [ "${1:-}" = "--serve" ]; then
    shift
    exec courier serve --demo "$@"
fi
courier demo --out demo-out "$@"
