"""Cash reconciliation rules: proposal, paid from proofs, difference, flag and sign-off."""

from __future__ import annotations

from dataclasses import replace

import pytest

from routing.cash import CashDay, paid_out_vnd, proposed_issue_vnd
from routing.errors import InputError
from routing.handover import check_recipient
from routing.model import Job, Load, TimeWindow


def job(job_id: str, category: str, cash: int = 0, **kw: object) -> Job:
    base = Job(
        job_id=job_id,
        kind="delivery",
        lon=108.0,
        lat=14.35,
        windows=(TimeWindow(0, 3600),),
        service_s=60,
        demand=Load(items=1, cash_vnd=cash),
        category=category,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


PAY_A = job("A", "pension_payout", 1_000_000)
PAY_B = job("B", "pension_payout", 2_500_000)
LICENCE = job("L", "licence_return")


def test_proposal_is_the_payouts_planned() -> None:
    """The morning proposal sums the payouts of the round, nothing for other jobs."""
    assert proposed_issue_vnd([PAY_A, PAY_B, LICENCE]) == 3_500_000
    assert proposed_issue_vnd([]) == 0


def test_paid_counts_completed_payout_proofs_only() -> None:
    """A failed payout or a non-payout job pays nothing, whatever its proof says."""
    paid = paid_out_vnd(
        [(PAY_A, "completed", 1_000_000), (PAY_B, "failed", 2_500_000), (LICENCE, "completed", 5)]
    )
    assert paid == 1_000_000


def test_difference_flags_until_signed_off() -> None:
    """Issued - paid - returned; a non-zero difference flags the day until a sign-off."""
    before_close = CashDay(issued_vnd=3_500_000, paid_vnd=1_000_000, returned_vnd=None)
    assert before_close.in_hand_vnd == 2_500_000
    assert before_close.difference_vnd is None
    assert not before_close.flagged
    even = CashDay(3_500_000, 1_000_000, 2_500_000)
    assert (even.difference_vnd, even.flagged, even.in_hand_vnd) == (0, False, 0)
    short = CashDay(3_500_000, 1_000_000, 2_300_000)
    assert (short.difference_vnd, short.flagged) == (200_000, True)
    over = CashDay(3_500_000, 1_000_000, 2_600_000)
    assert (over.difference_vnd, over.flagged) == (-100_000, True)
    assert not replace(short, signed_off=True).flagged


def test_authorised_person_only_for_results_and_payouts() -> None:
    """A result return or payout may go to an authorised person with details; a parcel may not."""
    check_recipient(PAY_A, "authorised", authorised_given=True)
    check_recipient(LICENCE, "authorised", authorised_given=True)
    check_recipient(job("R", "result_return"), "citizen", authorised_given=False)
    with pytest.raises(InputError) as e:
        check_recipient(job("P", "ems_delivery"), "authorised", authorised_given=True)
    assert e.value.column == "proof.received_by"
    with pytest.raises(InputError) as e:
        check_recipient(PAY_A, "authorised", authorised_given=False)
    assert e.value.column == "proof.authorised"
    with pytest.raises(InputError) as e:
        check_recipient(PAY_A, "citizen", authorised_given=True)
    assert e.value.column == "proof.authorised"


def test_closed_day_without_a_return_is_flagged() -> None:
    """Cash in hand at close and nothing counted back flags the day; nothing held, no flag."""
    unreturned = CashDay(2_000_000, 0, None, closed=True)
    assert unreturned.missing_return
    assert unreturned.flagged
    assert unreturned.difference_vnd is None
    assert not replace(unreturned, signed_off=True).flagged
    assert not CashDay(2_000_000, 2_000_000, None, closed=True).flagged
    assert not CashDay(0, 0, None, closed=True).flagged
    assert not CashDay(2_000_000, 0, None, closed=False).flagged
