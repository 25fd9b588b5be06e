"""Benchmark the solver on Li & Lim PDPTW (100 tasks) against bks.csv and baselines.

The BKS is hierarchical (vehicles, then exact distance); our solver runs in its
fleet-minimising mode. Usage::

    PYTHONPATH=. python tests/benchmarks/bench_lilim.py --time-limit 10 --json out/lilim.json
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._common import parse_args, run, summarise

CLASSES = ["lc1", "lc2", "lr1", "lr2", "lrc1", "lrc2"]


def class_of(name: str) -> str:
    m = re.match(r"([a-z]+)(\d)", name.lower())
    return f"{m.group(1)}{m.group(2)}" if m else name


def main() -> None:
    args = parse_args("/work/shared/data/pdptw/lilim100", __doc__ or "")
    rows = run(args, class_of=class_of, metric="distance_exact")
    print()
    print("Li & Lim (vehicles vs BKS; gap of exact distance vs bks.csv)")
    print(summarise(rows, CLASSES))


if __name__ == "__main__":
    main()
