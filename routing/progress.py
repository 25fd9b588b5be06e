"""Observe a solve: the :class:`SolveCallbacks` protocol and a no-op implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from routing.plan import Plan


class SolveCallbacks(Protocol):
    """Receive progress of a solve (start, each improving solution, end).

    Called in the solving thread; implementations must be quick (publish, do not compute).
    """

    def on_start(self, info: dict[str, Any]) -> None:
        """Receive problem sizes and parameters before the search starts."""

    def on_improvement(self, elapsed_s: float, objective: int, assigned_jobs: int) -> None:
        """Receive a new best solution: seconds since start, objective, jobs routed."""

    def on_end(self, plan: Plan) -> None:
        """Receive the final plan."""


class NullCallbacks:
    """Ignore every progress event."""

    def on_start(self, info: dict[str, Any]) -> None:
        """Do nothing."""

    def on_improvement(self, elapsed_s: float, objective: int, assigned_jobs: int) -> None:
        """Do nothing."""

    def on_end(self, plan: Plan) -> None:
        """Do nothing."""


class RecordingCallbacks:
    """Keep every progress event in lists (for tests and benchmarks)."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.improvements: list[tuple[float, int, int]] = []
        self.plans: list[Plan] = []

    def on_start(self, info: dict[str, Any]) -> None:
        """Record the start info."""
        self.started.append(dict(info))

    def on_improvement(self, elapsed_s: float, objective: int, assigned_jobs: int) -> None:
        """Record an improvement."""
        self.improvements.append((elapsed_s, objective, assigned_jobs))

    def on_end(self, plan: Plan) -> None:
        """Record the final plan."""
        self.plans.append(plan)
