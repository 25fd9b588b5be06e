"""Many-to-many travel-time and distance matrices over a compact graph.

The engine is a customizable contraction hierarchy (RoutingKit's CCH through the
``routingkit-cch`` bindings): the graph is contracted once along a nested-dissection
order, each day's weights (closures included) are applied by a customization that
takes a fraction of a second, and each row of the matrix is one upward sweep to
all pinned targets. Blocks of rows run in forked worker processes that share the
customized hierarchy. With many points on a small graph, full-graph Dijkstra from every point (scipy) is
faster and is chosen instead (:meth:`Router.choose_method`); both give identical
matrices because both sum the same integer edge weights.

Points lie *on* edges (see :mod:`geodata.snap`): a trip from point p starts at its
position along its edge, reaches the edge's ends at a partial cost, and a trip to
point q ends part-way along q's edge. Pairs with no path get :data:`UNREACHABLE`
and are listed in :attr:`TravelMatrix.unreachable`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from .compact import LENGTH_SCALE, TIME_SCALE, CompactGraph, with_contraction_order
from .snap import Snapped

logger = logging.getLogger(__name__)

#: Sentinel for "no path" in int64 matrices (about 35,000 years in seconds): large enough
#: never to be a real value, small enough that adding a few thousand never overflows.
UNREACHABLE: Final = 1 << 40
#: RoutingKit's infinite arc weight: an arc with it behaves as absent (closed road).
CCH_INF: Final = 2**31 - 1

ProgressFn = Callable[[int, int], None]
MatrixMethod = Literal["cch", "dijkstra"]

#: Dijkstra is chosen when points x this exceeds the graph's nodes (see Router.choose_method).
DIJKSTRA_POINTS_PER_NODE: Final = 3
_BLOCK_ROWS: Final = 64
# (metric, pinned targets, per-point sources) for forked workers; set only during a computation.
_FORKED: tuple[Any, list[int], list[list[tuple[int, int]]]] | None = None


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _cch_block(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Compute raw target distances for some rows (runs in a forked worker or in-process)."""
    import routingkit_cch as rk

    assert _FORKED is not None
    metric, targets, sources = _FORKED
    query = rk.CCHOneToMany(metric, targets)
    out = np.empty((rows.shape[0], len(targets)))
    for k, i in enumerate(rows.tolist()):
        d = np.array(query.distances_from_multi(sources[i]), dtype=np.float64)  # None -> nan
        d[np.isnan(d)] = np.inf
        out[k] = d
    return out


@dataclass(frozen=True, slots=True, eq=False)
class TravelMatrix:
    """Travel times (s) and distances (m) between points, row = from, column = to.

    ``distance_m`` is the length of the shortest path by distance (the length actually
    ridden along the fastest path comes with the leg geometry). ``unreachable`` lists the
    (from, to) index pairs without a path; ``far_points`` the points that were too
    far from any road to be routed (their rows and columns are unreachable).
    """

    time_s: npt.NDArray[np.int64]
    distance_m: npt.NDArray[np.int64]
    unreachable: npt.NDArray[np.int64]
    far_points: tuple[int, ...]

    @property
    def n(self) -> int:
        """Number of points."""
        return int(self.time_s.shape[0])

    def report(self) -> dict[str, Any]:
        """Return counts for logs and summaries."""
        return {
            "points": self.n,
            "unreachable_pairs": int(self.unreachable.shape[0]),
            "far_points": list(self.far_points),
        }


class Router:
    """Shortest paths on one compact graph for one day (its closed edges removed).

    Parameters
    ----------
    graph
        The compact graph.
    closed
        Boolean mask of closed edges (landslides, works) or None.
    workers
        Processes computing matrix rows in parallel (forked, sharing the hierarchy).
    """

    def __init__(
        self,
        graph: CompactGraph,
        *,
        closed: npt.NDArray[np.bool_] | None = None,
        workers: int = 2,
    ) -> None:
        if graph.meta.get("order") == "none":
            graph = with_contraction_order(graph)
        self.graph = graph
        self.workers = max(1, int(workers))
        if closed is None:
            closed = np.zeros(graph.n_edges, dtype=bool)
        if closed.shape != (graph.n_edges,):
            msg = f"closed mask must have one entry per edge ({graph.n_edges}), got {closed.shape}"
            raise ValueError(msg)
        self.closed = closed
        self.time_w = np.where(closed, CCH_INF, graph.time_ds).astype(np.int64)
        self.length_w = np.where(closed, CCH_INF, graph.length_dm).astype(np.int64)
        self._adjacency: dict[str, Any] = {}

    @cached_property
    def _cch(self) -> Any:
        import routingkit_cch as rk

        t0 = time.perf_counter()
        g = self.graph
        cch = rk.CCH(g.order.tolist(), g.tail.tolist(), g.head.tolist(), False)
        logger.debug("CCH built in %.2f s", time.perf_counter() - t0)
        return cch

    @cached_property
    def time_metric(self) -> Any:
        """CCH metric customized with travel times (deciseconds)."""
        import routingkit_cch as rk

        return rk.CCHMetric(self._cch, self.time_w.tolist())

    @cached_property
    def length_metric(self) -> Any:
        """CCH metric customized with lengths (decimetres)."""
        import routingkit_cch as rk

        return rk.CCHMetric(self._cch, self.length_w.tolist())

    # -- endpoints of snapped points -------------------------------------------------

    def _sources(
        self, snaps: Snapped, weights: npt.NDArray[np.int64]
    ) -> list[list[tuple[int, int]]]:
        """Per point, the (node, initial cost) pairs a trip starting there can reach first."""
        g = self.graph
        out: list[list[tuple[int, int]]] = []
        for e, f in zip(snaps.edge.tolist(), snaps.fraction.tolist(), strict=True):
            tail, head, tw = int(g.tail[e]), int(g.head[e]), int(g.twin[e])
            if f == 0.0:
                out.append([(tail, 0)])
            elif f == 1.0:
                out.append([(head, 0)])
            else:
                starts = []
                if weights[e] < CCH_INF:
                    starts.append((head, round((1 - f) * weights[e])))
                if tw >= 0 and weights[tw] < CCH_INF:
                    starts.append((tail, round(f * weights[tw])))
                out.append(starts)
        return out

    def _targets(
        self, snaps: Snapped, weights: npt.NDArray[np.int64]
    ) -> tuple[
        list[int],
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
    ]:
        """Pinned target nodes and, per point, two (slot, extra cost) ways to arrive."""
        g = self.graph
        n = len(snaps)
        slot_a = np.zeros(n, dtype=np.int64)
        cost_a = np.full(n, np.inf)
        slot_b = np.zeros(n, dtype=np.int64)
        cost_b = np.full(n, np.inf)
        nodes: dict[int, int] = {}
        for i, (e, f) in enumerate(zip(snaps.edge.tolist(), snaps.fraction.tolist(), strict=True)):
            tail, head, tw = int(g.tail[e]), int(g.head[e]), int(g.twin[e])
            if f == 0.0:
                slot_a[i], cost_a[i] = nodes.setdefault(tail, len(nodes)), 0.0
            elif f == 1.0:
                slot_a[i], cost_a[i] = nodes.setdefault(head, len(nodes)), 0.0
            else:
                if weights[e] < CCH_INF:
                    slot_a[i], cost_a[i] = nodes.setdefault(tail, len(nodes)), round(f * weights[e])
                if tw >= 0 and weights[tw] < CCH_INF:
                    slot_b[i], cost_b[i] = (
                        nodes.setdefault(head, len(nodes)),
                        round((1 - f) * weights[tw]),
                    )
        return list(nodes), slot_a, cost_a, slot_b, cost_b

    def _same_edge(self, snaps: Snapped, weights: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Costs of trips that stay on one edge (both points on it), inf elsewhere."""
        n = len(snaps)
        direct = np.full((n, n), np.inf)
        edge, frac = snaps.edge, snaps.fraction
        order = np.argsort(edge, kind="stable")
        bounds = np.flatnonzero(np.diff(edge[order])) + 1
        g = self.graph
        for group in np.split(order, bounds):
            if group.shape[0] < 2:
                continue
            e = int(edge[group[0]])
            f = frac[group]
            delta = f[None, :] - f[:, None]  # from row to column along the edge
            forward = (
                np.where(delta >= 0, delta * weights[e], np.inf) if weights[e] < CCH_INF else np.inf
            )
            tw = int(g.twin[e])
            backward = (
                np.where(delta <= 0, -delta * weights[tw], np.inf)
                if tw >= 0 and weights[tw] < CCH_INF
                else np.inf
            )
            direct[np.ix_(group, group)] = np.rint(np.minimum(forward, backward))
        return direct

    # -- matrices ------------------------------------------------------------------

    def _csr(self, weights: npt.NDArray[np.int64]) -> Any:
        """Adjacency for scipy's Dijkstra: the cheapest of parallel edges, closed edges left out."""
        key = "time" if weights is self.time_w else "length"
        if key not in self._adjacency:
            self._adjacency[key] = self._build_csr(weights)
        return self._adjacency[key]

    def _build_csr(self, weights: npt.NDArray[np.int64]) -> Any:
        from scipy.sparse import csr_matrix

        g = self.graph
        ok = weights < CCH_INF
        tail, head, w = g.tail[ok], g.head[ok], weights[ok]
        key = np.lexsort((w, head, tail))
        tail, head, w = tail[key], head[key], w[key]
        first = np.ones(tail.shape[0], dtype=bool)
        first[1:] = (tail[1:] != tail[:-1]) | (head[1:] != head[:-1])
        return csr_matrix(
            (w[first].astype(np.float64), (tail[first], head[first])), shape=(g.n_nodes, g.n_nodes)
        )

    def _rows_dijkstra(
        self,
        weights: npt.NDArray[np.int64],
        targets: list[int],
        sources: list[list[tuple[int, int]]],
    ) -> npt.NDArray[np.float64]:
        """Distances from every point to every target node by full-graph Dijkstra (small graphs)."""
        from scipy.sparse.csgraph import dijkstra

        adjacency = self._csr(weights)
        starts = sorted({node for s in sources for node, _ in s})
        where = {node: k for k, node in enumerate(starts)}
        tgt = np.asarray(targets, dtype=np.int64)
        from_start = np.empty((len(starts), tgt.shape[0]))
        chunk = max(1, int(2e7 // max(self.graph.n_nodes, 1)))  # about 160 MB at a time
        for k in range(0, len(starts), chunk):
            block = dijkstra(adjacency, indices=starts[k : k + chunk])
            from_start[k : k + chunk] = block[:, tgt]
        # each point leaves by up to two nodes, each with an initial cost
        n = len(sources)
        first = np.zeros(n, dtype=np.int64)
        first_cost = np.full(n, np.inf)
        second = np.zeros(n, dtype=np.int64)
        second_cost = np.full(n, np.inf)
        for i, s in enumerate(sources):
            if s:
                first[i], first_cost[i] = where[s[0][0]], s[0][1]
            if len(s) > 1:
                second[i], second_cost[i] = where[s[1][0]], s[1][1]
        if not starts:
            return np.full((n, tgt.shape[0]), np.inf)
        raw: npt.NDArray[np.float64] = from_start[first] + first_cost[:, None]
        if np.isfinite(second_cost).any():
            np.minimum(raw, from_start[second] + second_cost[:, None], out=raw)
        return raw

    def _rows_cch(
        self,
        metric_name: str,
        targets: list[int],
        sources: list[list[tuple[int, int]]],
        progress: ProgressFn | None,
    ) -> npt.NDArray[np.float64]:
        """Distances from every point to every target node by CCH sweeps, on worker processes."""
        n = len(sources)
        metric = self.time_metric if metric_name == "time" else self.length_metric
        rows = np.array([i for i in range(n) if sources[i]], dtype=np.int64)
        raw = np.full((n, len(targets)), np.inf)
        blocks = [rows[k : k + _BLOCK_ROWS] for k in range(0, rows.shape[0], _BLOCK_ROWS)]
        global _FORKED
        _FORKED = (metric, targets, sources)
        try:
            if self.workers > 1 and rows.shape[0] >= 2 * _BLOCK_ROWS and _can_fork():
                import multiprocessing

                ctx = multiprocessing.get_context("fork")
                with ctx.Pool(min(self.workers, len(blocks))) as pool:
                    results = pool.imap(_cch_block, blocks)
                    for done, (block, part) in enumerate(
                        zip(blocks, results, strict=True), start=1
                    ):
                        raw[block] = part
                        if progress is not None:
                            progress(min(done * _BLOCK_ROWS, n), n)
                    # finish the processes: leaving the block terminates them, which a
                    # process inheriting its parent's own SIGTERM handler ignores
                    pool.close()
                    pool.join()
            else:
                for done, block in enumerate(blocks, start=1):
                    raw[block] = _cch_block(block)
                    if progress is not None:
                        progress(min(done * _BLOCK_ROWS, n), n)
        finally:
            _FORKED = None
        return raw

    def _one_metric(
        self,
        metric_name: str,
        weights: npt.NDArray[np.int64],
        snaps: Snapped,
        method: str,
        progress: ProgressFn | None,
    ) -> npt.NDArray[np.float64]:
        n = len(snaps)
        sources = self._sources(snaps, weights)
        targets, slot_a, cost_a, slot_b, cost_b = self._targets(snaps, weights)
        if not targets or n == 0:
            return np.full((n, n), np.inf)
        if method == "dijkstra":
            raw = self._rows_dijkstra(weights, targets, sources)
        else:
            raw = self._rows_cch(metric_name, targets, sources, progress)
        out = np.minimum(raw[:, slot_a] + cost_a, raw[:, slot_b] + cost_b)
        if progress is not None:
            progress(n, n)
        best: npt.NDArray[np.float64] = np.minimum(out, self._same_edge(snaps, weights))
        return best

    def choose_method(self, n_points: int) -> MatrixMethod:
        """Pick the faster engine for a matrix of ``n_points`` on this graph.

        Full-graph Dijkstra costs one graph sweep per point; the hierarchy costs a small
        sweep per point plus a per-target share. Many points on a small graph (a city
        extract with thousands of addresses) favour Dijkstra; everything else favours the
        hierarchy (bench_matrix.py measures the crossover near one point per three nodes).
        """
        return "dijkstra" if n_points * DIJKSTRA_POINTS_PER_NODE > self.graph.n_nodes else "cch"

    def matrix(
        self,
        snaps: Snapped,
        *,
        distances: bool = True,
        method: MatrixMethod | Literal["auto"] = "auto",
        progress: ProgressFn | None = None,
    ) -> TravelMatrix:
        """Compute the travel-time (and distance) matrix between snapped points.

        Parameters
        ----------
        snaps
            Points on this graph's roads; far points are not routed.
        distances
            Also compute ``distance_m`` (doubles the cost); else it is zero-filled.
        method
            ``"cch"`` (contraction hierarchy), ``"dijkstra"`` (scipy, full graph
            from every point) or ``"auto"`` (:meth:`choose_method`). Both give
            identical matrices.
        progress
            Called with (rows done, rows total) now and then.

        Returns
        -------
        matrix
        """
        t0 = time.perf_counter()
        n = len(snaps)
        chosen = self.choose_method(n) if method == "auto" else method
        if chosen not in ("cch", "dijkstra"):
            msg = f"unknown matrix method {method!r}; use 'auto', 'cch' or 'dijkstra'"
            raise ValueError(msg)
        t = self._one_metric("time", self.time_w, snaps, chosen, progress)
        if distances:
            d = self._one_metric("length", self.length_w, snaps, chosen, None)
        else:
            d = np.zeros((n, n))
        out = _finish(t, d, snaps.far)
        logger.info(
            "matrix %dx%d by %s in %.2f s (%d unreachable pairs, %d far points)",
            n,
            n,
            chosen,
            time.perf_counter() - t0,
            out.unreachable.shape[0],
            len(out.far_points),
        )
        return out

    def pinned(self, snaps: Snapped, extra: Snapped | None = None) -> PinnedMatrix:
        """Return the matrix of ``snaps`` with the points kept pinned, to add a few points cheaply.

        With ``extra``, the first new points are computed with them (one matrix over all, no
        extension): :attr:`PinnedMatrix.first` is the matrix of ``snaps`` then ``extra``.
        """
        return PinnedMatrix(self, snaps, extra)

    def time_s(self, start: tuple[int, float], end: tuple[int, float]) -> float | None:
        """Return the fastest time (s) from one snapped point to another, or None if no road joins them.

        ``start`` and ``end`` are ``(edge, fraction)`` as :meth:`Snapper.snap_one` gives them.
        The same time as :meth:`path` finds, without the path, in plain Python numbers: the
        live ETAs ask for one time per GPS fix.
        """
        import routingkit_cch as rk

        g, w = self.graph, self.time_w
        (e_a, f_a), (e_b, f_b) = start, end
        direct = math.inf
        if e_a == e_b:  # both on one edge: along it, either way it may be ridden
            delta = f_b - f_a
            w_e, twin = int(w[e_a]), int(g.twin[e_a])
            if w_e < CCH_INF and delta >= 0:
                direct = delta * w_e
            if twin >= 0 and int(w[twin]) < CCH_INF and delta <= 0:
                direct = min(direct, -delta * int(w[twin]))
            if math.isfinite(direct):
                direct = float(round(direct))
        # Leaving the start's edge: at its node, or by either end it may be ridden to.
        tail, head, twin = int(g.tail[e_a]), int(g.head[e_a]), int(g.twin[e_a])
        sources: list[tuple[int, int]] = []
        if f_a == 0.0:
            sources.append((tail, 0))
        elif f_a == 1.0:
            sources.append((head, 0))
        else:
            if int(w[e_a]) < CCH_INF:
                sources.append((head, round((1 - f_a) * int(w[e_a]))))
            if twin >= 0 and int(w[twin]) < CCH_INF:
                sources.append((tail, round(f_a * int(w[twin]))))
        # Entering the end's edge likewise.
        tail, head, twin = int(g.tail[e_b]), int(g.head[e_b]), int(g.twin[e_b])
        targets: list[tuple[int, int]] = []
        if f_b == 0.0:
            targets.append((tail, 0))
        elif f_b == 1.0:
            targets.append((head, 0))
        else:
            if int(w[e_b]) < CCH_INF:
                targets.append((tail, round(f_b * int(w[e_b]))))
            if twin >= 0 and int(w[twin]) < CCH_INF:
                targets.append((head, round((1 - f_b) * int(w[twin]))))
        best: float | None = None
        if sources and targets:
            res = rk.CCHQuery(self.time_metric).run_multi(sources, targets)
            if res.distance is not None and res.distance < CCH_INF:
                best = float(res.distance)
        if math.isfinite(direct) and (best is None or direct <= best):
            best = direct
        return None if best is None else best / TIME_SCALE

    def path(self, snaps: Snapped, i: int, j: int) -> tuple[list[int], list[int], float] | None:
        """Return the fastest path from point i to point j: (edges, nodes, seconds), or None.

        ``edges`` are the whole edges ridden between the points' own edges, which
        are ridden in part; ``nodes`` start at the node where the trip leaves point
        i's edge and end where it enters point j's. Both lists are empty when the
        trip stays on one edge.
        """
        import routingkit_cch as rk

        pair = snaps.subset([i, j])
        direct = self._same_edge(pair, self.time_w)[0, 1]
        sources = self._sources(pair, self.time_w)[0]
        targets, slot_a, cost_a, slot_b, cost_b = self._targets(pair, self.time_w)
        tgt = []
        if math.isfinite(cost_a[1]):
            tgt.append((targets[slot_a[1]], int(cost_a[1])))
        if math.isfinite(cost_b[1]):
            tgt.append((targets[slot_b[1]], int(cost_b[1])))
        best: tuple[list[int], list[int], float] | None = None
        if sources and tgt:
            res = rk.CCHQuery(self.time_metric).run_multi(sources, tgt)
            if res.distance is not None and res.distance < CCH_INF:
                best = (list(res.arc_path), list(res.node_path), float(res.distance))
        if math.isfinite(direct) and (best is None or direct <= best[2]):
            best = ([], [], float(direct))
        if best is None:
            return None
        return best[0], best[1], best[2] / TIME_SCALE


def _finish(
    t: npt.NDArray[np.float64], d: npt.NDArray[np.float64], far: npt.NDArray[np.bool_]
) -> TravelMatrix:
    """Turn raw costs (deciseconds, decimetres; inf: no path) into a :class:`TravelMatrix`."""
    t[far, :] = np.inf
    t[:, far] = np.inf
    np.fill_diagonal(t, 0.0)
    bad = ~np.isfinite(t)
    time_s = np.where(bad, UNREACHABLE, np.rint(np.where(bad, 0, t) / TIME_SCALE)).astype(np.int64)
    d = np.where(np.isfinite(d), d, 0.0)
    distance_m = np.where(bad, UNREACHABLE, np.rint(d / LENGTH_SCALE)).astype(np.int64)
    np.fill_diagonal(distance_m, 0)
    unreachable = np.argwhere(bad).astype(np.int64)
    return TravelMatrix(time_s, distance_m, unreachable, tuple(np.flatnonzero(far).tolist()))


def _concat(a: Snapped, b: Snapped) -> Snapped:
    """Return the points of ``a`` followed by those of ``b``."""
    return Snapped(
        np.concatenate([a.edge, b.edge]),
        np.concatenate([a.fraction, b.fraction]),
        np.concatenate([a.distance_m, b.distance_m]),
        np.concatenate([a.lon, b.lon]),
        np.concatenate([a.lat, b.lat]),
        np.concatenate([a.far, b.far]),
        a.max_distance_m,
    )


def _inf_none(values: Sequence[float | None]) -> npt.NDArray[np.float64]:
    d = np.array(values, dtype=np.float64)  # None -> nan
    d[np.isnan(d)] = np.inf
    return d


def _leaving(
    sources: list[list[tuple[int, int]]], where: dict[int, int]
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]
]:
    """Per point, the (index in ``where``, initial cost) of the up to two nodes it leaves by."""
    n = len(sources)
    first, first_cost = np.zeros(n, dtype=np.int64), np.full(n, np.inf)
    second, second_cost = np.zeros(n, dtype=np.int64), np.full(n, np.inf)
    for i, s in enumerate(sources):
        if s:
            first[i], first_cost[i] = where[s[0][0]], s[0][1]
        if len(s) > 1:
            second[i], second_cost[i] = where[s[1][0]], s[1][1]
    return first, first_cost, second, second_cost


@dataclass(slots=True)
class _Pins:
    """One metric's view of the pinned points: their raw matrix and how trips leave and reach them."""

    raw: npt.NDArray[np.float64]
    sources: list[list[tuple[int, int]]]
    slot: dict[int, int]  # arrival node -> index
    slot_a: npt.NDArray[np.int64]
    cost_a: npt.NDArray[np.float64]
    slot_b: npt.NDArray[np.int64]
    cost_b: npt.NDArray[np.float64]
    where: dict[int, int]  # departure node -> index
    leaving: tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
    ]


class PinnedMatrix:
    """The travel matrix of a fixed set of points, extended by a few new points at a time.

    A courier's round priced again and again (urgent-job suggestions) keeps its own matrix:
    each new point then costs one search from it to all the points and one from all of them
    to it (per metric), instead of a matrix of the whole round. The extended matrix is the one
    :meth:`Router.matrix` gives for the same points: the same integer sums.
    """

    def __init__(self, router: Router, snaps: Snapped, extra: Snapped | None = None) -> None:
        self.router = router
        self.snaps = snaps
        self._pins: dict[str, _Pins] = {}
        n = len(snaps)
        every = snaps if extra is None else _concat(snaps, extra)
        raws: list[npt.NDArray[np.float64]] = []
        self._raw: dict[str, npt.NDArray[np.float64]] = {}
        for name, weights in (("time", router.time_w), ("length", router.length_w)):
            # trips between two points do not depend on the others: the pinned points' part
            # of a matrix over more points is their own matrix
            raws.append(router._one_metric(name, weights, every, "cch", None))
            self._raw[name] = raws[-1][:n, :n].copy()
        #: the matrix of the pinned points, then the first new points when given
        self.first = _finish(raws[0], raws[1], every.far)

    def _pinned(self, name: str, weights: npt.NDArray[np.int64]) -> _Pins:
        """Return how trips leave and reach the pinned points (worked out on the first extension)."""
        pins = self._pins.get(name)
        if pins is None:
            router, snaps = self.router, self.snaps
            targets, slot_a, cost_a, slot_b, cost_b = router._targets(snaps, weights)
            sources = router._sources(snaps, weights)
            where: dict[int, int] = {}
            for s in sources:
                for node, _ in s:
                    where.setdefault(node, len(where))
            pins = _Pins(
                self._raw[name],
                sources,
                {node: i for i, node in enumerate(targets)},
                slot_a,
                cost_a,
                slot_b,
                cost_b,
                where,
                _leaving(sources, where),
            )
            self._pins[name] = pins
        return pins

    def _extended_raw(
        self, name: str, weights: npt.NDArray[np.int64], extra: Snapped, both: Snapped
    ) -> npt.NDArray[np.float64]:
        import routingkit_cch as rk

        router, pins = self.router, self._pinned(name, weights)
        metric = router.time_metric if name == "time" else router.length_metric
        n, k = len(self.snaps), len(extra)
        raw = np.full((n + k, n + k), np.inf)
        raw[:n, :n] = pins.raw
        e_sources = router._sources(extra, weights)
        e_targets, e_slot_a, e_cost_a, e_slot_b, e_cost_b = router._targets(extra, weights)
        # the points' arrival nodes, the pinned ones' first
        slot = dict(pins.slot)
        for node in e_targets:
            slot.setdefault(node, len(slot))
        remap = np.array([slot[node] for node in e_targets] or [0], dtype=np.int64)
        slot_a = np.concatenate([pins.slot_a, remap[e_slot_a]])
        slot_b = np.concatenate([pins.slot_b, remap[e_slot_b]])
        cost_a = np.concatenate([pins.cost_a, e_cost_a])
        cost_b = np.concatenate([pins.cost_b, e_cost_b])
        # the points' departure nodes, the pinned ones' first
        where = dict(pins.where)
        for s in e_sources:
            for node, _ in s:
                where.setdefault(node, len(where))
        leaving = _leaving(e_sources, where)
        first, first_cost, second, second_cost = (
            np.concatenate([p, e]) for p, e in zip(pins.leaving, leaving, strict=True)
        )
        to_all = rk.CCHOneToMany(metric, list(slot)) if slot else None
        from_all = rk.CCHManyToOne(metric, list(where)) if where else None
        for x in range(k):
            # from the new point to every point
            if e_sources[x] and to_all is not None:
                r = _inf_none(to_all.distances_from_multi(e_sources[x]))
                raw[n + x] = np.minimum(r[slot_a] + cost_a, r[slot_b] + cost_b)
            # from the pinned points to the new one
            arrive = [
                (e_targets[int(sl)], int(cost))
                for sl, cost in ((e_slot_a[x], e_cost_a[x]), (e_slot_b[x], e_cost_b[x]))
                if np.isfinite(cost)
            ]
            if arrive and from_all is not None:
                c = _inf_none(from_all.distances_to_multi(arrive))
                col = np.minimum(c[first[:n]] + first_cost[:n], c[second[:n]] + second_cost[:n])
                raw[:n, n + x] = col
        # trips along one street: only those to or from a new point are not in the pinned matrix
        near = np.flatnonzero(np.isin(both.edge, extra.edge))
        block = np.ix_(near, near)
        raw[block] = np.minimum(raw[block], router._same_edge(both.subset(near), weights))
        return raw

    def extended(self, extra: Snapped) -> TravelMatrix:
        """Return the matrix of the pinned points followed by ``extra`` (new points last)."""
        both = _concat(self.snaps, extra)
        t = self._extended_raw("time", self.router.time_w, extra, both)
        d = self._extended_raw("length", self.router.length_w, extra, both)
        return _finish(t, d, both.far)


def build_matrix(
    graph: CompactGraph,
    snaps: Snapped,
    *,
    closed: npt.NDArray[np.bool_] | None = None,
    distances: bool = True,
    workers: int = 2,
    method: MatrixMethod | Literal["auto"] = "auto",
    progress: ProgressFn | None = None,
) -> TravelMatrix:
    """Compute travel times (s) and distances (m) between snapped points.

    A convenience over :class:`Router` for one matrix; keep a Router to compute
    several matrices on the same day's graph.
    """
    router = Router(graph, closed=closed, workers=workers)
    return router.matrix(snaps, distances=distances, method=method, progress=progress)
