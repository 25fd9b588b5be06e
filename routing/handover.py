"""Who may receive a handover: the citizen, or a person the citizen authorised.

A result return (licence, certificate) or a pension payout may be handed to someone other
than the citizen, who shows a written authorisation: the proof then records that person's
name, relation to the citizen, the last digits of their ID and a photo of the authorisation.
Other jobs go to the citizen (or the office desk) only.
"""

from __future__ import annotations

from routing.errors import InputError
from routing.model import Job
from routing.vocabulary import Recipient


def check_recipient(job: Job, received_by: str, *, authorised_given: bool) -> None:
    """Refuse a proof whose recipient the job's rules do not allow.

    Raises
    ------
    InputError
        Naming ``proof.received_by`` (an authorised person for a job that allows none) or
        ``proof.authorised`` (the person's details missing, or given for the citizen).
    """
    if received_by == Recipient.AUTHORISED:
        if not job.allows_authorised_handover:
            raise InputError(
                None,
                "proof.received_by",
                received_by,
                "only a result return or a pension payout may go to an authorised person",
            )
        if not authorised_given:
            raise InputError(
                None,
                "proof.authorised",
                None,
                "an authorised handover needs the person's name, relation, ID digits and "
                "a photo of the authorisation",
            )
    elif authorised_given:
        raise InputError(
            None,
            "proof.authorised",
            "given",
            "an authorised person's details need received_by 'authorised'",
        )
