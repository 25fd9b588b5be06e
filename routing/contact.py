"""How a citizen is reached: Vietnamese phone numbers, e-mail addresses, the chosen channel.

Phones are stored in one form, the international digits without ``+`` (``84905123456``),
which Zalo's template messages and most SMS gateways take as they are. They are shown
masked (``0•••••••456``) everywhere except where the courier serves the stop.
"""

from __future__ import annotations

import re
from enum import StrEnum


class NotifyPreference(StrEnum):
    """How the citizen wants to hear about the visit."""

    NONE = "none"
    ZALO = "zalo"
    SMS = "sms"
    EMAIL = "email"


#: What the jobs file may write for each preference (Vietnamese and English, any case).
PREFERENCE_ALIASES: dict[str, NotifyPreference] = {
    "": NotifyPreference.NONE,
    "none": NotifyPreference.NONE,
    "không": NotifyPreference.NONE,
    "khong": NotifyPreference.NONE,
    "zalo": NotifyPreference.ZALO,
    "zns": NotifyPreference.ZALO,
    "sms": NotifyPreference.SMS,
    "tin nhắn": NotifyPreference.SMS,
    "email": NotifyPreference.EMAIL,
    "e-mail": NotifyPreference.EMAIL,
}

#: National numbers (after the trunk ``0``): mobiles are 9 digits starting 3, 5, 7, 8 or 9;
#: landlines are 10 digits starting 2 (area code 2xx, e.g. Kon Tum's 260).
_MOBILE = re.compile(r"[35789]\d{8}")
_LANDLINE = re.compile(r"2\d{9}")
_SEPARATORS = re.compile(r"[\s.\-()/]")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


def normalise_phone(text: str) -> str:
    """Return a Vietnamese phone number as international digits without ``+``: ``84…``.

    Accepts the forms people write: ``0905 123 456``, ``0905.123.456``, ``(0260) 3862 123``,
    ``+84 905 123 456``, ``84905123456``, ``0084 905 123 456``.

    Raises
    ------
    ValueError
        If the text is not a Vietnamese mobile (10 digits with the leading 0) or landline
        (11 digits with the leading 0) number; the message says why.
    """
    raw = _SEPARATORS.sub("", text.strip())
    if raw.startswith("+"):
        raw = raw[1:]
        if not raw.startswith("84"):
            msg = "not a Vietnamese number (international numbers must start with +84)"
            raise ValueError(msg)
    if not raw.isdigit():
        msg = "a phone number has only digits, spaces, dots, dashes, brackets and a leading +"
        raise ValueError(msg)
    if raw.startswith("0084"):
        national = raw[4:]
    elif raw.startswith("84") and len(raw) in (11, 12):
        national = raw[2:]
    elif raw.startswith("0"):
        national = raw[1:]
    else:
        msg = "write the number with its leading 0 (0905 123 456) or +84"
        raise ValueError(msg)
    national = national.removeprefix("0")  # +84 (0)905 ...
    if _MOBILE.fullmatch(national) or _LANDLINE.fullmatch(national):
        return "84" + national
    msg = (
        "not a Vietnamese phone number: a mobile has 10 digits (09x, 08x, 07x, 05x, 03x), "
        "a landline 11 (02xx)"
    )
    raise ValueError(msg)


def local_phone(phone: str) -> str:
    """Return a normalised phone (``84905123456``) as written at home: ``0905123456``."""
    return "0" + phone[2:] if phone.startswith("84") else phone


def mask_phone(phone: str | None) -> str | None:
    """Return a phone with all but its last three digits hidden: ``0•••••••456``.

    Enough for a courier to tell two numbers apart, not to call one.
    """
    if not phone:
        return None
    local = local_phone(phone)
    return local[0] + "•" * (len(local) - 4) + local[-3:]


def normalise_email(text: str) -> str:
    """Return an e-mail address trimmed and with its domain in lower case.

    Raises
    ------
    ValueError
        If the text is not one plausible address (a local part, ``@``, a dotted domain).
    """
    address = text.strip()
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        msg = "not an e-mail address (name@domain.vn)"
        raise ValueError(msg)
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def parse_preference(text: str) -> NotifyPreference:
    """Return the preference a jobs file names (``zalo``, ``sms``, ``email``, ``none``; any case).

    Raises
    ------
    ValueError
        If the text names no preference.
    """
    found = PREFERENCE_ALIASES.get(text.strip().lower())
    if found is None:
        msg = "must be none, zalo, sms or email"
        raise ValueError(msg)
    return found
