"""Errors raised by the routing package.

Each class subclasses a builtin too, so callers may catch either the routing class or the
builtin (``except ValueError`` still catches an :class:`InputError`).
"""

from __future__ import annotations


class RoutingError(Exception):
    """Base class of every error raised by :mod:`routing`."""


class InputError(RoutingError, ValueError):
    """Reject invalid input, naming the row, column, value and reason.

    Parameters
    ----------
    row
        Row number in the source file (1-based, header excluded) or ``None``.
    column
        Column or field name, or ``None``.
    value
        The offending value.
    reason
        Why the value is rejected, in plain words.
    """

    def __init__(
        self,
        row: int | None,
        column: str | None,
        value: object,
        reason: str,
    ) -> None:
        self.row = row
        self.column = column
        self.value = value
        self.reason = reason
        msg = f"row {row}, column {column!r}, value {value!r}: {reason}"
        super().__init__(msg)

    def __repr__(self) -> str:
        return (
            f"InputError(reason={self.reason!r}, row={self.row!r}, "
            f"column={self.column!r}, value={self.value!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle by keyword fields (needed when errors cross process pools)."""
        return (InputError, (self.row, self.column, self.value, self.reason))


class SolverError(RoutingError, RuntimeError):
    """Report a failure of the optimisation back-end (not an infeasible job)."""
