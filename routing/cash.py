"""Cash of pension payouts: what a courier takes in the morning, pays out and brings back.

Pure rules, shared by the service, the pages and the reports. For each courier and day:

- **issued**: the cash handed over at the post office in the morning, entered by the
  dispatcher, or proposed as the sum of the payouts planned on the round
  (:func:`proposed_issue_vnd`, from :attr:`routing.model.Job.payout_vnd`);
- **paid**: the cash paid out at the doors, the sum of the amounts in the proofs of the
  completed payouts (:func:`paid_out_vnd`);
- **returned**: the cash counted back at close;
- **difference** = issued - paid - returned (positive: cash missing, negative: cash over).

A non-zero difference flags the courier's day until a manager signs it off with a note; so does
a closed day whose courier held cash and had none counted back (the difference is unknown).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from routing.model import Job
from routing.vocabulary import StopStatus


def proposed_issue_vnd(jobs: Iterable[Job]) -> int:
    """Return the cash a round needs in the morning: the payouts planned on it."""
    return sum(j.payout_vnd for j in jobs)


def paid_out_vnd(handovers: Iterable[tuple[Job, str, int | None]]) -> int:
    """Return the cash paid out: the proofs' amounts of the completed payouts.

    ``handovers`` are ``(job, stop status, cash paid in the proof)``; a stop not completed, or
    a job that is no payout, pays nothing whatever its proof says.
    """
    return sum(
        paid or 0
        for job, status, paid in handovers
        if status == StopStatus.COMPLETED and job.is_payout
    )


@dataclass(frozen=True, slots=True)
class CashDay:
    """One courier's cash for one day.

    Parameters
    ----------
    issued_vnd
        Cash issued in the morning, or ``None`` before it is entered (or proposed).
    paid_vnd
        Cash paid out, from the proofs.
    returned_vnd
        Cash returned at close, or ``None`` before the close.
    signed_off
        Whether a manager signed off the day's difference.
    closed
        Whether the day is closed (what was not counted back by then is missing).
    """

    issued_vnd: int | None
    paid_vnd: int
    returned_vnd: int | None
    signed_off: bool = False
    closed: bool = False

    @property
    def in_hand_vnd(self) -> int | None:
        """Cash the courier should be carrying now: issued minus paid (None if nothing issued)."""
        if self.returned_vnd is not None:
            return 0
        return None if self.issued_vnd is None else self.issued_vnd - self.paid_vnd

    @property
    def difference_vnd(self) -> int | None:
        """Issued minus paid minus returned; None until both issued and returned are known."""
        if self.issued_vnd is None or self.returned_vnd is None:
            return None
        return self.issued_vnd - self.paid_vnd - self.returned_vnd

    @property
    def missing_return(self) -> bool:
        """Whether the day closed with cash in the courier's hands and nothing counted back."""
        return (
            self.closed
            and self.returned_vnd is None
            and (self.issued_vnd or 0) - self.paid_vnd != 0
        )

    @property
    def flagged(self) -> bool:
        """Whether the day shows a difference (or a missing return) no manager signed off yet."""
        return (self.difference_vnd not in (None, 0) or self.missing_return) and not self.signed_off
