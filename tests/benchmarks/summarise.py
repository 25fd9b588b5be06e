"""Print the per-class table of one or more benchmark JSON files (merged).

Usage::

    PYTHONPATH=. python tests/benchmarks/summarise.py out/solomon.json [more.json ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._common import summarise


def main() -> None:
    rows = []
    for path in sys.argv[1:]:
        rows.extend(json.loads(Path(path).read_text()))
    classes = list(dict.fromkeys(r["class"] for r in rows))
    print(summarise(rows, sorted(classes)))


if __name__ == "__main__":
    main()
