"""Zalo ZNS error codes: which are retried, which fall back to SMS, which fail (api.notify.channels)."""

from __future__ import annotations

import pytest

from api.notify.channels import (
    ZALO_ERRORS,
    ZALO_FALLBACK_CODES,
    ZALO_RETRY_CODES,
    zalo_action,
)


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (-100, "retry"),  # unknown error: Zalo says try again later
        (-101, "fail"),  # our app id is wrong: neither SMS nor a retry helps
        (-104, "fail"),  # our secret key
        (-105, "fail"),  # our app is linked to no official account
        (-108, "fallback"),  # phone number invalid for Zalo
        (-109, "fallback"),  # template id invalid: the template is refused
        (-110, "fallback"),  # the citizen's Zalo is too old to show ZNS
        (-111, "fallback"),  # template data empty
        (-112, "fallback"),  # template data invalid
        (-114, "fallback"),  # the citizen is inactive or refuses ZNS
        (-118, "fallback"),  # the phone has no Zalo account
        (-124, "retry"),  # access token invalid: renewed by an operator
        (-999, "fail"),  # a code nobody knows: fail with Zalo's words, do not loop
        (0, "fail"),  # success is never classified as an error
    ],
)
def test_each_code_says_what_happens_to_the_message(code: int, action: str) -> None:
    """The codes read in Zalo's table (and the common ones seen elsewhere) go where they should."""
    assert zalo_action(code) == action
    assert (code in ZALO_RETRY_CODES) == (action == "retry")
    assert (code in ZALO_FALLBACK_CODES) == (action == "fallback")


def test_no_code_is_both_retried_and_sent_by_sms() -> None:
    """A message is either tried again on Zalo or handed to SMS, never both."""
    assert not ZALO_RETRY_CODES & ZALO_FALLBACK_CODES
    assert set(ZALO_ERRORS) >= ZALO_RETRY_CODES | ZALO_FALLBACK_CODES


def test_every_row_names_its_source() -> None:
    """Each classification says whether Zalo's page, other integrators or nobody verified it."""
    for code, (_, meaning) in ZALO_ERRORS.items():
        assert code < 0
        assert meaning.split(" ", 1)[0] in ("[zalo]", "[seen]", "[unverified]"), code
    read_at_zalo = {c for c, (_, m) in ZALO_ERRORS.items() if m.startswith("[zalo]")}
    assert read_at_zalo == set(range(-112, -99))
