"""The running day's words on the pages: every unassigned reason and diff kind is said in both languages."""

from __future__ import annotations

import json

import pytest

from api.web.i18n import MESSAGES_DIR
from routing.vocabulary import UNASSIGNED_MESSAGES, UnassignedReason

DIFF_KINDS = ("kept", "moved", "added", "dropped", "unrouted")


def _own(lang: str, page: str) -> dict[str, str]:
    return dict(json.loads((MESSAGES_DIR / lang / f"{page}.json").read_text(encoding="utf-8")))


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_unassigned_reason_has_the_vocabulary_text(lang: str) -> None:
    """The dispatcher's page says each reason (a re-plan's ``cancelled`` and ``courier_unavailable`` too) as the reports do."""
    own = _own(lang, "dispatcher")
    for reason in UnassignedReason:
        en, vi = UNASSIGNED_MESSAGES[reason]
        assert own[f"unassigned_{reason}"] == (vi if lang == "vi" else en)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_diff_kind_is_named(lang: str) -> None:
    """Each kind of a re-plan's difference has a count label and a row label in its own language."""
    own = _own(lang, "dispatcher")
    for kind in DIFF_KINDS:
        assert own[f"diff_count_{kind}"]
        assert own[f"diff_kind_{kind}"]
    assert _own(lang, "courier")["new_badge"]


def test_the_two_languages_have_the_same_running_day_keys() -> None:
    """No running-day text exists in one language only (the English page would show Vietnamese)."""
    for page in ("dispatcher", "courier"):
        assert set(_own("vi", page)) == set(_own("en", page))
