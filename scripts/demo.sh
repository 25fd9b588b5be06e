#!/usr/bin/env bash
# Set up and run the demo: the synthetic Kon Tum province and a day of courier jobs planned
# end to end on the embedded defaults. Outputs go to ./demo-out. Extra arguments go to
# `courier demo` (see `courier demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh dev
mkdir -p demo-out
courier geodata synth --nodes 20000 --seed 0 --out demo-out/province.npz \
    --zones demo-out/zones.geojson --depots demo-out/depots.csv "$@"
courier geodata info demo-out/province.npz
