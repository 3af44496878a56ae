"""Masking of personal data (customer names, phone and ID numbers) for logs, lists and exports."""

from __future__ import annotations

import re


def mask_name(name: str | None) -> str:
    """Keep the family name (first character), mask the rest: 张三丰 → 张**."""
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str | None) -> str:
    """Mask a phone number down to at most its last four digits, whatever its format.

    Mobiles, landlines with or without an area code, ``+86``/``0086`` prefixes, spaces and
    hyphens all come out as stars and the last four digits (``13812345678`` →
    ``*******5678``, ``0755-2681234`` → ``*******1234``); a number of fewer than seven digits
    shows none. The country code is dropped; formatting characters are not kept.
    """
    if not phone:
        return ""
    text = phone.strip()
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if text.startswith("+86") or text.startswith("0086"):
        digits = digits[2:] if text.startswith("+") else digits[4:]
    if not digits:
        return "*" * len(text)
    if len(digits) < 7:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_id_number(id_number: str | None) -> str:
    """Keep the first and last two characters of an ID number."""
    if not id_number:
        return ""
    if len(id_number) <= 4:
        return "*" * len(id_number)
    return id_number[:2] + "*" * (len(id_number) - 4) + id_number[-2:]


# Paths whose last segment is a secret: the public tracking page and its JSON twin.
SECRET_PATH = re.compile(r"/(t|track)/[^/?#\s\"'<>]+")
REDACTED = "[redacted]"
_URL = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)
# A path segment that looks like a random token (tracking tokens, API tokens, secrets).
_TOKENISH = re.compile(r"^[A-Za-z0-9_\-~.%]{16,}$")
_CODE_DIGITS = re.compile(r"\d{4,}")


def redact_secret_paths(text: str) -> str:
    """Replace the token of every secret-carrying path: ``/t/abc…`` → ``/t/[redacted]``."""
    return SECRET_PATH.sub(lambda m: f"/{m.group(1)}/{REDACTED}", text)


def _url_path(match: re.Match[str]) -> str:
    url = match.group(0)
    rest = url.split("://", 1)[1]
    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    path = re.split(r"[?#]", path, maxsplit=1)[0]
    segments = [REDACTED if _TOKENISH.match(s) else s for s in path.split("/")]
    return redact_secret_paths("/".join(segments))


def redact_links(text: str) -> str:
    """Every http(s) link → its path, without query, fragment or token-like segments."""
    return redact_secret_paths(_URL.sub(_url_path, text))


def redact_codes(text: str) -> str:
    """Mask every run of four or more digits (one-time codes)."""
    return _CODE_DIGITS.sub(lambda m: "*" * len(m.group(0)), text)
