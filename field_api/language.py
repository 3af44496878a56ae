"""The language a request is answered in: zh-CN by default, English on request.

One rule for every answer a person reads (CSV exports, rendered messages):

1. the page's language switch, the cookie ``fo_lang`` (:mod:`field_api.common.i18n`): the user's
   own choice wins over the browser's defaults;
2. otherwise the ``Accept-Language`` header, by its quality values (``en-GB,en;q=0.9`` is
   English, ``zh-CN,zh;q=0.9,en;q=0.8`` is Chinese);
3. otherwise zh-CN.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import HTTPConnection

from field_api.common.i18n import DEFAULT_LANG, LANG_COOKIE, Lang, normalise

__all__ = ["DEFAULT_LANG", "Lang", "from_accept_language", "language_of"]

# An Accept-Language header is read only this far: a client cannot make us parse megabytes.
_MAX_HEADER: Final = 512
_MAX_ENTRIES: Final = 16


def language_of(request: HTTPConnection) -> Lang:
    """The language to answer ``request`` in (cookie, then Accept-Language, then zh-CN)."""
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie:
        return normalise(cookie)
    return from_accept_language(request.headers.get("accept-language")) or DEFAULT_LANG


def from_accept_language(header: str | None) -> Lang | None:
    """The supported language an ``Accept-Language`` header prefers, or ``None``.

    Ranges are weighed by ``q`` (default 1; ``q=0`` means "not this"); among equal weights the
    first listed wins. ``zh*`` is Chinese, ``en*`` English; ``*`` and others say nothing.
    """
    if not header:
        return None
    best: tuple[float, Lang] | None = None
    for entry in header[:_MAX_HEADER].split(",")[:_MAX_ENTRIES]:
        tag, _, params = entry.strip().partition(";")
        tag = tag.strip().lower()
        if tag.startswith("zh"):
            lang: Lang = "zh-CN"
        elif tag.startswith("en"):
            lang = "en"
        else:
            continue
        quality = _quality(params)
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, lang)
    return best[1] if best else None


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return 0.0
            return quality if 0.0 <= quality <= 1.0 else 0.0
    return 1.0
