"""Page text in Vietnamese (first) and English: one JSON file per page and language.

``messages/<lang>/<page>.json`` holds flat keys; they are merged as ``<page>.<key>`` so each page
owns its file. Missing English text falls back to Vietnamese, then to the key itself, so a gap
shows up on screen instead of breaking the page.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Literal

Language = Literal["vi", "en"]
LANGUAGES: tuple[Language, ...] = ("vi", "en")
MESSAGES_DIR = Path(__file__).parent / "messages"


@cache
def messages(lang: Language) -> dict[str, str]:
    """Return every message of a language as ``{"page.key": text}`` (Vietnamese fills gaps)."""
    out: dict[str, str] = {}
    for language in ("vi", lang) if lang != "vi" else ("vi",):
        for path in sorted((MESSAGES_DIR / language).glob("*.json")):
            page = path.stem
            for key, text in json.loads(path.read_text(encoding="utf-8")).items():
                out[f"{page}.{key}"] = text
    return out


def translate(lang: Language, key: str, **values: object) -> str:
    """Return the text of ``key`` in ``lang`` with ``{name}`` placeholders filled."""
    text = messages(lang).get(key, key)
    return text.format(**values) if values else text


def pick_language(query: str | None, cookie: str | None, default: Language) -> Language:
    """Return the page language: an explicit ``?lang=``, else the cookie, else the default."""
    for choice in (query, cookie):
        if choice in LANGUAGES:
            return choice  # type: ignore[return-value]
    return default
