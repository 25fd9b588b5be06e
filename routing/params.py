"""Solver parameters: time limit, strategies, seed, objective; validated, loadable from TOML."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from routing.errors import InputError

FIRST_SOLUTION_STRATEGIES: frozenset[str] = frozenset(
    {
        "AUTOMATIC",
        "PATH_CHEAPEST_ARC",
        "PATH_MOST_CONSTRAINED_ARC",
        "SAVINGS",
        "SWEEP",
        "CHRISTOFIDES",
        "ALL_UNPERFORMED",
        "BEST_INSERTION",
        "PARALLEL_CHEAPEST_INSERTION",
        "SEQUENTIAL_CHEAPEST_INSERTION",
        "LOCAL_CHEAPEST_INSERTION",
        "LOCAL_CHEAPEST_COST_INSERTION",
        "GLOBAL_CHEAPEST_ARC",
        "LOCAL_CHEAPEST_ARC",
        "FIRST_UNBOUND_MIN_VALUE",
    }
)
LOCAL_SEARCH_METAHEURISTICS: frozenset[str] = frozenset(
    {
        "AUTOMATIC",
        "GREEDY_DESCENT",
        "GUIDED_LOCAL_SEARCH",
        "SIMULATED_ANNEALING",
        "TABU_SEARCH",
        "GENERIC_TABU_SEARCH",
    }
)

Objective = Literal["duration", "distance"]


@dataclass(frozen=True, slots=True)
class SolverParams:
    """Options of :func:`routing.solver.solve`.

    Parameters
    ----------
    time_limit_s
        Wall-clock budget of the whole solve, seconds (> 0).
    seed
        Random seed (PyVRP); OR-Tools is deterministic for a given model and time budget.
    first_solution
        OR-Tools first-solution strategy name (``routing_enums_pb2.FirstSolutionStrategy``).
        Insertion heuristics work with tight windows; ``PATH_CHEAPEST_ARC`` often does not.
    local_search
        OR-Tools metaheuristic name (``LocalSearchMetaheuristic``).
    use_pyvrp
        Run PyVRP first and hand its routes to OR-Tools as the initial solution. Skills and
        pre-assigned offices become PyVRP routing profiles, a job's windows a client group,
        pairs shipments, a lunch break every courier shares a clock without the break;
        breaks that differ between couriers are relaxed (see ``routing.solver``).
    pyvrp_share
        Fraction of ``time_limit_s`` given to PyVRP when it runs (0 < share < 1).
    ortools_after_pyvrp_max_s
        When set, PyVRP's share grows so that OR-Tools' search from PyVRP's start (and the
        balancing that follows, when on) is left at most this many seconds; breaks relaxed
        for PyVRP still cut its run short, as ``pyvrp_share`` is. On a post-office day
        (:func:`routing.planner.piece_params`) a second of OR-Tools polishes a town piece's
        short search, while a mountain piece's many seconds do more in PyVRP.
    first_solution_portfolio
        Further first-solution strategies tried (each stops at its first solution) when
        PyVRP does not run; the cheapest start is improved by ``local_search``.
    portfolio_share
        Fraction of ``time_limit_s`` the portfolio may use at most (0 <= share < 1).
    num_workers
        Worker processes for callers that solve pieces in parallel (the planner); the
        solver itself is single-threaded.
    objective
        Arc cost: travel time (``"duration"``, the province default) or distance.
    vehicle_fixed_cost
        Added once per used courier, in arc-cost units (seconds or metres).
    drop_penalty
        Cost of leaving a priority-1 job unassigned (times the priority); ``None`` picks a
        value larger than any detour so jobs are dropped only when infeasible.
    log_search
        Let OR-Tools log its search (to stderr).
    balance
        Even out working time (a round's return less its departure) among the couriers:
        when, after the first ``1 - balance_share`` of the search, the longest round is more
        than ``balance_tolerance`` above the mean, the rest of the search also pays
        ``balance_weight`` per second of the latest return less the earliest departure, so
        the longest round gives work away; the result is kept if it is more even and costs
        at most ``balance_max_extra`` more. On for post-office days
        (:func:`routing.planner.plan_day`), off for textbook benchmarks.
    balance_weight
        Arc-cost units per second of that span (seconds of driving with the duration
        objective); in steps of 1/4 (``routing.solver.BALANCE_SCALE``).
    balance_tolerance
        Longest round over the mean round, less one, that is left as it is (0.15: within
        15 %).
    balance_share
        Fraction of the search after the start given to balancing (0 < share < 1).
    balance_max_extra
        Extra cost (fraction of the plan's objective) a more even plan may have.
    """

    time_limit_s: float = 10.0
    seed: int = 0
    first_solution: str = "SAVINGS"
    local_search: str = "GUIDED_LOCAL_SEARCH"
    use_pyvrp: bool = True
    pyvrp_share: float = 0.8
    ortools_after_pyvrp_max_s: float | None = None
    first_solution_portfolio: tuple[str, ...] = (
        "PARALLEL_CHEAPEST_INSERTION",
        "LOCAL_CHEAPEST_INSERTION",
    )
    portfolio_share: float = 0.3
    num_workers: int = 1
    objective: Objective = "duration"
    vehicle_fixed_cost: int = 0
    drop_penalty: int | None = None
    log_search: bool = False
    balance: bool = False
    balance_weight: float = 0.75
    balance_tolerance: float = 0.15
    balance_share: float = 0.5
    balance_max_extra: float = 0.1

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise InputError(None, "time_limit_s", self.time_limit_s, "must be positive")
        if self.first_solution not in FIRST_SOLUTION_STRATEGIES:
            raise InputError(
                None, "first_solution", self.first_solution, "unknown first-solution strategy"
            )
        if self.local_search not in LOCAL_SEARCH_METAHEURISTICS:
            raise InputError(None, "local_search", self.local_search, "unknown metaheuristic")
        if not 0 < self.pyvrp_share < 1:
            raise InputError(None, "pyvrp_share", self.pyvrp_share, "must be in (0, 1)")
        cap = self.ortools_after_pyvrp_max_s
        if cap is not None and not cap > 0:
            raise InputError(None, "ortools_after_pyvrp_max_s", cap, "must be positive")
        for name in self.first_solution_portfolio:
            if name not in FIRST_SOLUTION_STRATEGIES:
                raise InputError(
                    None, "first_solution_portfolio", name, "unknown first-solution strategy"
                )
        if not 0 <= self.portfolio_share < 1:
            raise InputError(None, "portfolio_share", self.portfolio_share, "must be in [0, 1)")
        if self.num_workers < 1:
            raise InputError(None, "num_workers", self.num_workers, "must be at least 1")
        if self.objective not in ("duration", "distance"):
            raise InputError(None, "objective", self.objective, "'duration' or 'distance'")
        if self.vehicle_fixed_cost < 0:
            raise InputError(None, "vehicle_fixed_cost", self.vehicle_fixed_cost, "must be >= 0")
        if self.drop_penalty is not None and self.drop_penalty < 0:
            raise InputError(None, "drop_penalty", self.drop_penalty, "must be >= 0")
        if self.seed < 0:
            raise InputError(None, "seed", self.seed, "must be >= 0")
        if not self.balance_weight > 0:
            raise InputError(None, "balance_weight", self.balance_weight, "must be positive")
        if not 0 < self.balance_share < 1:
            raise InputError(None, "balance_share", self.balance_share, "must be in (0, 1)")
        if not self.balance_max_extra >= 0:
            raise InputError(None, "balance_max_extra", self.balance_max_extra, "must be >= 0")
        if not self.balance_tolerance >= 0:
            raise InputError(None, "balance_tolerance", self.balance_tolerance, "must be >= 0")

    @classmethod
    def from_toml(cls, path: str | Path, *, table: str | None = "solver") -> SolverParams:
        """Load parameters from a TOML file.

        Keys are the field names; unknown keys are rejected. If ``table`` is given and present
        in the file, that table is read (``[solver]`` by default); otherwise the top level.

        Parameters
        ----------
        path
            The TOML file.
        table
            Name of the table holding the parameters, or ``None`` for the top level.

        Returns
        -------
        SolverParams
            The validated parameters.

        Raises
        ------
        InputError
            On an unknown key or an invalid value.
        """
        with Path(path).open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
        if table is not None and isinstance(data.get(table), dict):
            data = data[table]
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise InputError(None, key, data[key], f"unknown solver parameter in {path}")
        if "first_solution_portfolio" in data:
            data["first_solution_portfolio"] = tuple(data["first_solution_portfolio"])
        return cls(**data)
