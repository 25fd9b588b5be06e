"""Benchmark the solver on Solomon VRPTW (100 customers) against bks.csv and baselines.

Distances use the bks.csv convention (arcs truncated to one decimal). Usage::

    PYTHONPATH=. python tests/benchmarks/bench_solomon.py --time-limit 10 --json out/solomon.json
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._common import parse_args, run, summarise

CLASSES = ["C1", "C2", "R1", "R2", "RC1", "RC2"]


def class_of(name: str) -> str:
    m = re.match(r"([A-Za-z]+)(\d)", name)
    return f"{m.group(1).upper()}{m.group(2)}" if m else name


def main() -> None:
    args = parse_args("/work/shared/data/vrptw/solomon", __doc__ or "")
    rows = run(args, class_of=class_of, metric="distance_truncated")
    print()
    print("Solomon (gap vs bks.csv, truncated distances)")
    print(summarise(rows, CLASSES))


if __name__ == "__main__":
    main()
