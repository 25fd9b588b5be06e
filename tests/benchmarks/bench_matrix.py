"""Benchmark: N x N travel-time matrices, our CCH engine against full-graph Dijkstra.

For each graph (the real OSM extracts in ``../shared/data/osm`` and the synthetic
province at about 100k nodes) and each N in (100, 500, 1000, 2000), N random
addresses at road nodes (as in osmnx tutorials: nearest node, then Dijkstra) are
routed by

- ``ours``: :class:`geodata.matrix.Router` with its automatic engine choice: the
  customizable contraction hierarchy on two worker processes, or full-graph Dijkstra
  when the points are many for a small graph (column ``engine``);
- ``scipy``: ``scipy.sparse.csgraph.dijkstra`` from every source over the full graph
  (the baseline every speed-up is measured against, in the same run);
- ``networkx``: per-source ``single_source_dijkstra_path_length`` (N <= 200 only).

All methods use the same integer edge weights, and the script checks that their
matrices are identical. Prints a table and, with ``--json PATH``, writes the rows.

Usage::

    python tests/benchmarks/bench_matrix.py --json matrix.json
    python tests/benchmarks/bench_matrix.py --graphs synthetic --sizes 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from geodata.compact import TIME_SCALE, CompactGraph, compact_graph, load_compact  # noqa: E402
from geodata.matrix import UNREACHABLE, Router  # noqa: E402
from geodata.network import graph_from_file  # noqa: E402
from geodata.snap import Snapped  # noqa: E402
from geodata.synthetic import make_province  # noqa: E402

OSM_DIR = ROOT.parent / "shared" / "data" / "osm"
EXTRACTS = ("hanoi_vanmieu.osm.pbf", "Helsinki.osm.pbf", "monaco.osm.pbf", "andorra.osm.pbf")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median seconds over ``repeat`` runs (one run when the first takes over 5 s)."""
    times = []
    result: object = None
    for k in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        if k == 0 and times[0] > 5:
            break
    return statistics.median(times), result


def to_seconds(ds: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(ds)
    return np.where(bad, UNREACHABLE, np.rint(np.where(bad, 0, ds) / TIME_SCALE)).astype(np.int64)


def scipy_graph(g: CompactGraph) -> csr_matrix:
    """CSR adjacency with the cheapest of parallel edges (scipy would sum duplicates)."""
    key = np.lexsort((g.time_ds, g.head, g.tail))
    tail, head, w = g.tail[key], g.head[key], g.time_ds[key]
    first = np.ones(tail.shape[0], dtype=bool)
    first[1:] = (tail[1:] != tail[:-1]) | (head[1:] != head[:-1])
    return csr_matrix(
        (w[first].astype(np.float64), (tail[first], head[first])), shape=(g.n_nodes, g.n_nodes)
    )


def nx_graph(g: CompactGraph) -> nx.DiGraph:
    D = nx.DiGraph()
    D.add_nodes_from(range(g.n_nodes))
    for t, h, w in zip(g.tail.tolist(), g.head.tolist(), g.time_ds.tolist(), strict=True):
        if not D.has_edge(t, h) or D[t][h]["w"] > w:
            D.add_edge(t, h, w=w)
    return D


def at_nodes(g: CompactGraph, nodes: np.ndarray) -> Snapped:
    """Place points exactly at graph nodes (as osmnx tutorials do with nearest_nodes).

    Geometric snapping could put a point on another road passing over the same spot
    (bridges, overlapping ways), which would be right but not comparable with a
    node-to-node baseline.
    """
    out_edge = np.full(g.n_nodes, -1, dtype=np.int64)
    out_edge[g.tail[::-1]] = np.arange(g.n_edges)[::-1]
    in_edge = np.full(g.n_nodes, -1, dtype=np.int64)
    in_edge[g.head] = np.arange(g.n_edges)
    edge = np.where(out_edge[nodes] >= 0, out_edge[nodes], in_edge[nodes])
    fraction = np.where(out_edge[nodes] >= 0, 0.0, 1.0)
    zeros = np.zeros(nodes.shape[0])
    return Snapped(
        edge, fraction, zeros, g.node_lon[nodes], g.node_lat[nodes], zeros.astype(bool), 0.0
    )


def load_graphs(
    names: list[str], synthetic_nodes: int, cache_dir: Path
) -> list[tuple[str, CompactGraph]]:
    graphs = []
    for name in names:
        if name == "synthetic":
            cache = cache_dir / f"synthetic-{synthetic_nodes}.npz"
            if cache.exists():
                g = load_compact(cache)
            else:
                print(
                    f"generating the synthetic province ({synthetic_nodes:,} nodes)...",
                    file=sys.stderr,
                )
                g = compact_graph(make_province(synthetic_nodes, seed=1).graph)
                g.save(cache)
            graphs.append((f"synthetic-{synthetic_nodes // 1000}k", g))
        else:
            path = OSM_DIR / name
            if not path.exists():
                print(f"skipping {name}: {path} not found", file=sys.stderr)
                continue
            graphs.append(
                (name.split(".")[0], compact_graph(graph_from_file(path, profile="motorbike")))
            )
    return graphs


def scipy_matrix(A: csr_matrix, at: np.ndarray, chunk: int = 200) -> np.ndarray:
    """Full-graph Dijkstra from every point, keeping only the points' columns (chunked for memory)."""
    out = np.empty((at.shape[0], at.shape[0]))
    for k in range(0, at.shape[0], chunk):
        out[k : k + chunk] = dijkstra(A, indices=at[k : k + chunk])[:, at]
    return out


def nx_matrix(D: nx.DiGraph, at: np.ndarray) -> np.ndarray:
    """Per-source networkx Dijkstra, as osmnx tutorials do it."""
    out = np.full((at.shape[0], at.shape[0]), np.inf)
    for i, s in enumerate(at.tolist()):
        dist = nx.single_source_dijkstra_path_length(D, s, weight="w")
        out[i] = [dist.get(t, np.inf) for t in at.tolist()]
    return out


def bench_graph(
    label: str, g: CompactGraph, sizes: list[int], repeat: int, seed: int
) -> list[dict[str, object]]:
    """Time our matrices for every size first (so their memory peak is their own), then the baselines."""
    t0 = time.perf_counter()
    router = Router(g, workers=2)
    router.time_metric  # noqa: B018  (build and customize the hierarchy once per day graph)
    prepare_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    points = [rng.choice(g.n_nodes, n, replace=n > g.n_nodes) for n in sizes]
    ours: list[tuple[float, np.ndarray, str, float]] = []
    for nodes in points:
        snaps = at_nodes(g, nodes)
        seconds, m = timed(lambda s=snaps: router.matrix(s, distances=False), repeat)
        ours.append((seconds, m.time_s, router.choose_method(len(nodes)), peak_rss_mb()))  # type: ignore[attr-defined]

    A = scipy_graph(g)
    D = nx_graph(g) if min(sizes) <= 200 else None
    rows: list[dict[str, object]] = []
    for n, nodes, (cch_s, matrix, engine, rss) in zip(sizes, points, ours, strict=True):
        sp_s, full = timed(lambda at=nodes: scipy_matrix(A, at), repeat)
        ref = to_seconds(np.asarray(full))
        np.fill_diagonal(ref, 0)
        same = bool(np.array_equal(matrix, ref))
        base = {"graph": label, "nodes": g.n_nodes, "edges": g.n_edges, "n": n}
        rows.append(
            base
            | {
                "method": "ours",
                "engine": engine,
                "seconds": round(cch_s, 4),
                "prepare_s": round(prepare_s, 3),
                "speedup_vs_scipy": round(sp_s / cch_s, 1),
                "speedup_incl_prepare": round(sp_s / (cch_s + prepare_s), 1),
                "identical_to_scipy": same,
                "unreachable_pairs": int((matrix == UNREACHABLE).sum()),
                "peak_rss_mb": round(rss, 1),
            }
        )
        rows.append(
            base
            | {"method": "scipy", "seconds": round(sp_s, 4), "peak_rss_mb": round(peak_rss_mb(), 1)}
        )
        if D is not None and n <= 200:
            nx_s, nx_m = timed(lambda at=nodes, D=D: nx_matrix(D, at), repeat)
            nx_ref = to_seconds(np.asarray(nx_m))
            np.fill_diagonal(nx_ref, 0)
            rows.append(
                base
                | {
                    "method": "networkx",
                    "seconds": round(nx_s, 4),
                    "identical_to_scipy": bool(np.array_equal(nx_ref, ref)),
                    "peak_rss_mb": round(peak_rss_mb(), 1),
                }
            )
        print(
            f"  {label} n={n}: ours ({engine}) {cch_s:.3f}s, scipy {sp_s:.3f}s, identical={same}",
            file=sys.stderr,
        )
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    header = f"{'graph':<16}{'nodes':>9}{'N':>6}  {'method':<16}{'seconds':>9}{'speedup':>9}{'identical':>10}{'rss MB':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        speed = r.get("speedup_vs_scipy", "")
        method = f"{r['method']} ({r['engine']})" if "engine" in r else str(r["method"])
        ident = r.get("identical_to_scipy", "")
        print(
            f"{r['graph']!s:<16}{r['nodes']:>9,}{r['n']:>6}  {method:<16}{r['seconds']:>9.3f}"
            f"{speed!s:>9}{ident!s:>10}{r['peak_rss_mb']:>9}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--graphs", nargs="*", default=[*EXTRACTS, "synthetic"])
    parser.add_argument("--sizes", nargs="*", type=int, default=[100, 500, 1000, 2000])
    parser.add_argument("--synthetic-nodes", type=int, default=100_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per timing; the median is reported"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()

    rows: list[dict[str, object]] = []
    for label, g in load_graphs(args.graphs, args.synthetic_nodes, args.cache_dir):
        t0 = time.perf_counter()
        rows += bench_graph(label, g, args.sizes, args.repeat, args.seed)
        print(f"{label}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print_table(rows)
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    bad = [r for r in rows if r.get("identical_to_scipy") is False]
    if bad:
        print(f"MISMATCH in {len(bad)} rows", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
