"""The proof columns of who received a handover (kept apart from the event path's code)."""

from __future__ import annotations

from typing import Any

from api.events.schemas import ProofIn


def authorised_columns(proof: ProofIn) -> dict[str, Any]:
    """Return the proof's recipient columns: who received it, and the authorised person."""
    person = proof.authorised
    return {
        "received_by": str(proof.received_by),
        "authorised_name": person.name.strip() if person else None,
        "authorised_relation": person.relation.strip() if person else None,
        "authorised_id_digits": person.id_last_digits if person else None,
        "authorisation_photo_sha256": person.photo_id if person else None,
    }
