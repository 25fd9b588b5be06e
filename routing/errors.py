"""Errors raised by the routing package.

Each class subclasses a builtin too, so callers may catch either the routing class or the
builtin (``except ValueError`` still catches an :class:`InputError`).
"""

from __future__ import annotations

from typing import Any


class RoutingError(Exception):
    """Base class of every error raised by :mod:`routing`."""


class InputError(RoutingError, ValueError):
    """Reject invalid input, naming the row, column, value and reason.

    Parameters
    ----------
    row
        Row number as a spreadsheet shows it (the header is row 1; for GeoJSON, the
        feature number), or ``None`` when the error is not about one row.
    column
        Column or field name, or ``None``.
    value
        The offending value.
    reason
        Why the value is rejected, in plain words (English).
    code, params
        The reason as a message key and its values, for a page to say it in the reader's
        language (``routing.io.ROW_ERROR_CODES``); None when there is no such key.
    """

    def __init__(
        self,
        row: int | None,
        column: str | None,
        value: object,
        reason: str,
        *,
        code: str | None = None,
        params: dict[str, object] | None = None,
    ) -> None:
        self.row = row
        self.column = column
        self.value = value
        self.reason = reason
        self.code = code
        self.params = params or {}
        msg = f"row {row}, column {column!r}, value {value!r}: {reason}"
        super().__init__(msg)

    def __repr__(self) -> str:
        return (
            f"InputError(reason={self.reason!r}, row={self.row!r}, "
            f"column={self.column!r}, value={self.value!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle by keyword fields (needed when errors cross process pools)."""
        return (
            _input_error,
            (self.row, self.column, self.value, self.reason, self.code, self.params),
        )


def _input_error(
    row: int | None,
    column: str | None,
    value: object,
    reason: str,
    code: str | None,
    params: dict[str, object],
) -> InputError:
    return InputError(row, column, value, reason, code=code, params=params)


class InputFileError(InputError):
    """Reject a whole file, listing every bad row.

    ``errors`` holds one :class:`InputError` per problem; the message names the file, how
    many rows are bad and the first few problems. The row, column, value and reason of the
    exception itself are those of the first problem.
    """

    def __init__(self, source: str, errors: list[InputError]) -> None:
        if not errors:
            msg = "InputFileError needs at least one error"
            raise ValueError(msg)
        self.source = source
        self.errors = list(errors)
        first = errors[0]
        super().__init__(first.row, first.column, first.value, first.reason)
        shown = "; ".join(_describe(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        self.args = (f"{source}: {len(errors)} problem(s): {shown}{more}",)

    def __reduce__(self) -> tuple[object, ...]:
        return (InputFileError, (self.source, self.errors))


def _describe(e: InputError) -> str:
    where = []
    if e.row is not None:
        where.append(f"row {e.row}")
    if e.column:
        where.append(f"column {e.column!r}")
    place = ", ".join(where)
    value = f" value {e.value!r}" if e.value not in (None, "") else ""
    return f"{place}{':' if place else ''}{value} {e.reason}".strip()


class InputTooLargeError(InputError):
    """Reject a file over a size cap: more rows than allowed, or an .xlsx unpacking to too much.

    Not about one bad value: the reason names the cap (the service answers 413).
    """


class SolverError(RoutingError, RuntimeError):
    """Report a failure of the optimisation back-end (not an infeasible job)."""


class UnknownIdError(RoutingError, LookupError):
    """A job or courier named in a change is not in the plan."""


class PlanConflictError(RoutingError):
    """A change contradicts the plan's state (a job on no route, a served stop moved)."""


class InfeasibleChangeError(RoutingError):
    """A change to a plan breaks a rule; ``violations`` lists what the checker found.

    Parameters
    ----------
    msg
        What was refused, with the first violations.
    violations
        :class:`routing.check.Violation` objects.
    """

    def __init__(self, msg: str, violations: list[Any]) -> None:
        super().__init__(msg)
        self.violations = violations

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.violations))
