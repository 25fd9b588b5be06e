"""Read benchmark instances (Solomon / Gehring-Homberger VRPTW, Li & Lim PDPTW) into a Problem.

The split follows ``pyvrp/read.py``: :func:`parse_instance` turns text into a plain
:class:`ParsedInstance` (numbers only), :func:`build_instance` turns that into a
:class:`Problem` plus integer matrices. Benchmark units become "seconds" and "metres" after
scaling by :attr:`BenchmarkInstance.scale`:

- ``"trunc1"`` (Solomon's ``bks.csv`` convention): every arc is the Euclidean distance
  truncated to one decimal, i.e. ``floor(10 * d)`` at scale 10, used for both time and
  distance; the reported distance is the integer sum divided by 10.
- ``"exact"`` (Li & Lim's convention, real distances): scale 1000, times rounded *up* (so a
  plan feasible on the matrix is feasible in real numbers), distances rounded; the reported
  distance is recomputed in floating point from the coordinates.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from routing.errors import InputError
from routing.model import Courier, Depot, Job, Load, Problem, TimeWindow
from routing.params import SolverParams

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from routing.plan import Plan

logger = logging.getLogger(__name__)

InstanceKind = Literal["vrptw", "pdptw"]
Rounding = Literal["trunc1", "exact"]

SCALE: dict[str, int] = {"trunc1": 10, "exact": 1000}

#: Fixed cost per vehicle (in instance distance units) of the fleet-minimising mode: larger
#: than the distance any extra vehicle could save on the 100-customer sets.
FLEET_MIN_FIXED_COST_UNITS = 5000


@dataclass(frozen=True, slots=True)
class ParsedInstance:
    """Numbers read from a benchmark file; row 0 is the depot.

    Parameters
    ----------
    name
        Instance name.
    kind
        ``"vrptw"`` (Solomon format) or ``"pdptw"`` (Li & Lim format).
    num_vehicles, capacity
        Fleet size and vehicle capacity.
    coords
        (n, 2) coordinates.
    demand
        Signed demand per row (Li & Lim: > 0 pickup, < 0 delivery).
    ready, due, service
        Time window and service time per row.
    pickup_of, delivery_of
        Li & Lim sibling indices (0 when none); zeros for Solomon.
    """

    name: str
    kind: InstanceKind
    num_vehicles: int
    capacity: int
    coords: NDArray[np.float64]
    demand: NDArray[np.int64]
    ready: NDArray[np.int64]
    due: NDArray[np.int64]
    service: NDArray[np.int64]
    pickup_of: NDArray[np.int64]
    delivery_of: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BenchmarkInstance:
    """A benchmark instance as a :class:`Problem` with its integer matrices.

    Parameters
    ----------
    parsed
        The raw numbers.
    problem
        Depot 0, ``num_vehicles`` identical couriers, one job per customer row.
    durations, distances
        Scaled integer matrices in location order (depot, then rows 1..n).
    rounding
        ``"trunc1"`` or ``"exact"``.
    scale
        Multiplier from instance units to matrix units.
    """

    parsed: ParsedInstance
    problem: Problem
    durations: NDArray[np.int64]
    distances: NDArray[np.int64]
    rounding: Rounding
    scale: int

    @property
    def name(self) -> str:
        """Instance name."""
        return self.parsed.name


def _numbers(line: str) -> list[float]:
    return [float(tok) for tok in line.split()]


def parse_instance(path: str | Path) -> ParsedInstance:
    """Parse a Solomon/Gehring-Homberger or Li & Lim text file (format detected).

    Parameters
    ----------
    path
        The ``.txt`` file.

    Returns
    -------
    ParsedInstance
        The numbers of the file.

    Raises
    ------
    InputError
        If the file is in neither format, naming the line.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    if any(line.strip().upper().startswith("VEHICLE") for line in lines[:10]):
        return _parse_solomon(path, lines)
    return _parse_lilim(path, lines)


def _parse_solomon(path: Path, lines: list[str]) -> ParsedInstance:
    name = lines[0].strip() or path.stem
    num_vehicles = capacity = None
    rows: list[list[float]] = []
    section = ""
    for lineno, line in enumerate(lines[1:], start=2):
        text = line.strip()
        if not text:
            continue
        upper = text.upper()
        if upper.startswith("VEHICLE"):
            section = "vehicle"
            continue
        if upper.startswith("CUSTOMER"):
            section = "customer"
            continue
        if upper.startswith(("NUMBER", "CUST")):
            continue
        try:
            values = _numbers(text)
        except ValueError as e:
            raise InputError(lineno, None, text, f"not a number row in {path.name}") from e
        if section == "vehicle":
            num_vehicles, capacity = int(values[0]), int(values[1])
        elif section == "customer":
            if len(values) != 7:
                raise InputError(lineno, None, text, "expected 7 columns")
            rows.append(values)
    if num_vehicles is None or capacity is None or not rows:
        raise InputError(None, None, str(path), "missing VEHICLE or CUSTOMER section")
    arr = np.asarray(rows)
    zeros = np.zeros(len(rows), dtype=np.int64)
    return ParsedInstance(
        name=name,
        kind="vrptw",
        num_vehicles=num_vehicles,
        capacity=capacity,
        coords=arr[:, 1:3].astype(np.float64),
        demand=arr[:, 3].astype(np.int64),
        ready=arr[:, 4].astype(np.int64),
        due=arr[:, 5].astype(np.int64),
        service=arr[:, 6].astype(np.int64),
        pickup_of=zeros,
        delivery_of=zeros.copy(),
    )


def _parse_lilim(path: Path, lines: list[str]) -> ParsedInstance:
    content = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not content:
        raise InputError(None, None, str(path), "empty file")
    try:
        head = _numbers(content[0][1])
        rows = [_numbers(line) for _, line in content[1:]]
    except ValueError as e:
        raise InputError(None, None, str(path), "neither Solomon nor Li & Lim format") from e
    if len(head) < 2:
        raise InputError(content[0][0], None, content[0][1], "expected 'K Q [speed]'")
    for (lineno, line), values in zip(content[1:], rows, strict=True):
        if len(values) != 9:
            raise InputError(lineno, None, line, "expected 9 columns (Li & Lim)")
    arr = np.asarray(rows)
    if int(arr[0, 0]) != 0:
        raise InputError(content[1][0], "id", arr[0, 0], "first task must be the depot 0")
    return ParsedInstance(
        name=path.stem,
        kind="pdptw",
        num_vehicles=int(head[0]),
        capacity=int(head[1]),
        coords=arr[:, 1:3].astype(np.float64),
        demand=arr[:, 3].astype(np.int64),
        ready=arr[:, 4].astype(np.int64),
        due=arr[:, 5].astype(np.int64),
        service=arr[:, 6].astype(np.int64),
        pickup_of=arr[:, 7].astype(np.int64),
        delivery_of=arr[:, 8].astype(np.int64),
    )


def euclidean_matrices(
    coords: NDArray[np.float64], rounding: Rounding
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return (durations, distances) integer matrices for the rounding convention.

    ``"trunc1"`` gives ``floor(10 * d)`` computed exactly for integer coordinates
    (``isqrt(100 * (dx^2 + dy^2))``); ``"exact"`` gives ``ceil(1000 d)`` times and
    ``round(1000 d)`` distances.
    """
    diff = coords[:, None, :] - coords[None, :, :]
    if rounding == "trunc1" and np.all(coords == np.round(coords)):
        sq = np.rint((diff**2).sum(axis=2)).astype(np.int64) * 100
        trunc = np.vectorize(math.isqrt, otypes=[np.int64])(sq)
        return trunc, trunc.copy()
    dist = np.sqrt((diff**2).sum(axis=2))
    if rounding == "trunc1":
        trunc = np.floor(dist * 10 + 1e-9).astype(np.int64)
        return trunc, trunc.copy()
    scale = SCALE["exact"]
    return (
        np.ceil(dist * scale - 1e-9).astype(np.int64),
        np.rint(dist * scale).astype(np.int64),
    )


def build_instance(
    parsed: ParsedInstance, *, rounding: Rounding | None = None
) -> BenchmarkInstance:
    """Build a :class:`Problem` and matrices from parsed numbers.

    Coordinates become ``lon = x / 1000``, ``lat = y / 1000`` (valid degrees; only the
    matrices matter). Every courier gets the depot's horizon as shift and the instance capacity
    (as ``items``).

    Parameters
    ----------
    parsed
        Output of :func:`parse_instance`.
    rounding
        Arc convention; default ``"trunc1"`` for VRPTW and ``"exact"`` for PDPTW.

    Returns
    -------
    BenchmarkInstance
        Problem and matrices.
    """
    rounding = rounding or ("trunc1" if parsed.kind == "vrptw" else "exact")
    scale = SCALE[rounding]
    durations, distances = euclidean_matrices(parsed.coords, rounding)
    x, y = parsed.coords[:, 0], parsed.coords[:, 1]
    horizon = TimeWindow(int(parsed.ready[0]) * scale, int(parsed.due[0]) * scale)
    depot = Depot("0", "depot", float(x[0]) / 1000, float(y[0]) / 1000, horizon)
    couriers = tuple(
        Courier(
            courier_id=f"v{k}",
            depot_id="0",
            shift=horizon,
            capacity=Load(items=parsed.capacity),
        )
        for k in range(parsed.num_vehicles)
    )
    jobs = []
    for i in range(1, len(parsed.coords)):
        demand = int(parsed.demand[i])
        pair_id = None
        kind: Literal["pickup", "delivery"] = "delivery"
        if parsed.kind == "pdptw":
            if parsed.delivery_of[i] > 0 or (parsed.pickup_of[i] == 0 and demand >= 0):
                kind = "pickup"
                pair_id = f"p{i}" if parsed.delivery_of[i] > 0 else None
            else:
                pair_id = f"p{int(parsed.pickup_of[i])}" if parsed.pickup_of[i] > 0 else None
        jobs.append(
            Job(
                job_id=str(i),
                kind=kind,
                lon=float(x[i]) / 1000,
                lat=float(y[i]) / 1000,
                windows=(TimeWindow(int(parsed.ready[i]) * scale, int(parsed.due[i]) * scale),),
                service_s=int(parsed.service[i]) * scale,
                demand=Load(items=abs(demand)),
                pair_id=pair_id,
            )
        )
    problem = Problem((depot,), couriers, tuple(jobs), name=parsed.name)
    return BenchmarkInstance(parsed, problem, durations, distances, rounding, scale)


def read_instance(path: str | Path, *, rounding: Rounding | None = None) -> BenchmarkInstance:
    """Read a Solomon / Gehring-Homberger / Li & Lim file into a :class:`BenchmarkInstance`.

    Parameters
    ----------
    path
        The ``.txt`` file.
    rounding
        Arc convention; default per format (see module docstring).

    Returns
    -------
    BenchmarkInstance
        Problem and matrices.

    Raises
    ------
    InputError
        If the file cannot be parsed or describes an invalid problem.
    """
    return build_instance(parse_instance(path), rounding=rounding)


def _route_rows(instance: BenchmarkInstance, plan: Plan) -> list[list[int]]:
    """Return each route as instance row numbers, depot 0 at both ends."""
    rows = []
    for route in plan.routes:
        # Location index equals the instance row (depot 0 first, then rows 1..n in order).
        rows.append([0, *[s.location_idx for s in route.stops], 0])
    return rows


def plan_distances(instance: BenchmarkInstance, plan: Plan) -> tuple[float, float]:
    """Return (truncated-to-one-decimal distance, exact Euclidean distance) of a plan."""
    coords = instance.parsed.coords
    truncated = exact = 0.0
    trunc_int = 0
    for rows in _route_rows(instance, plan):
        for a, b in itertools.pairwise(rows):
            d = float(np.hypot(*(coords[a] - coords[b])))
            exact += d
            trunc_int += math.floor(d * 10 + 1e-9)
    truncated = trunc_int / 10
    return truncated, exact


def instance_params(
    instance: BenchmarkInstance, *, time_limit_s: float, seed: int = 0, **overrides: Any
) -> SolverParams:
    """Return the solver parameters used for a benchmark instance.

    VRPTW (Solomon): minimise distance. PDPTW (Li & Lim): fleet-minimising mode, a fixed
    cost per vehicle larger than any distance saving, then distance.
    """
    fixed = 0
    if instance.parsed.kind == "pdptw":
        fixed = FLEET_MIN_FIXED_COST_UNITS * instance.scale
    options: dict[str, Any] = {
        "time_limit_s": time_limit_s,
        "seed": seed,
        "objective": "distance",
        "vehicle_fixed_cost": fixed,
    }
    options.update(overrides)
    return SolverParams(**options)


def solve_instance(
    path: str | Path,
    *,
    time_limit_s: float = 10.0,
    seed: int = 0,
    params: SolverParams | None = None,
) -> dict[str, Any]:
    """Solve one benchmark file; return a JSON-ready summary (for ``courier solve-instance``).

    Parameters
    ----------
    path
        Solomon / Gehring-Homberger / Li & Lim ``.txt`` file.
    time_limit_s
        Solver time budget, seconds.
    seed
        Random seed.
    params
        Full parameters (overrides ``time_limit_s`` and ``seed``).

    Returns
    -------
    dict
        ``instance, kind, vehicles, distance_truncated, distance_exact, feasible,
        violations, unassigned, seconds, engine, routes`` (routes as lists of row numbers).
    """
    from routing.check import check_plan
    from routing.solver import solve

    instance = read_instance(path)
    params = params or instance_params(instance, time_limit_s=time_limit_s, seed=seed)
    t0 = time.monotonic()
    plan = solve(instance.problem, instance.durations, instance.distances, params=params)
    seconds = time.monotonic() - t0
    violations = check_plan(instance.problem, plan, instance.durations, instance.distances)
    truncated, exact = plan_distances(instance, plan)
    return {
        "instance": instance.name,
        "kind": instance.parsed.kind,
        "vehicles": plan.num_routes,
        "distance_truncated": round(truncated, 1),
        "distance_exact": round(exact, 4),
        "feasible": not violations and not plan.unassigned,
        "violations": [str(v) for v in violations[:20]],
        "unassigned": len(plan.unassigned),
        "seconds": round(seconds, 2),
        "engine": plan.stats.get("engine", ""),
        "routes": _route_rows(instance, plan),
    }
