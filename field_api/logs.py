"""Logging of the server without secrets: access-log paths lose their tokens.

A public tracking link is ``/t/<token>`` (and ``/track/<token>`` for its JSON twin): whoever
reads an access log line holding it can open the customer's progress page. uvicorn's access
log writes the request path with its query string, so :class:`RedactSecrets` rewrites every
record it sees — its arguments, else its merged message — replacing such tokens with
``[redacted]`` (``GET /t/[redacted] HTTP/1.1``): the route is logged, the token is not. It also
blanks query parameters that carry secrets (``?token=…``, ``?code=…``) and API tokens
(``fo_…``) should one ever reach a log line.

Where it is installed, and why there:

- ``fieldops serve`` passes :func:`uvicorn_log_config` to ``uvicorn.run``: uvicorn's own
  logging configuration with the filter on its ``default`` and ``access`` handlers, and the
  service's ``field_api`` loggers routed to the ``default`` handler at ``FIELDOPS_LOG_LEVEL``.
  A handler filter sees every record the handler writes, whichever logger emitted it, and the
  configuration is applied by uvicorn itself, in every worker process, before the first
  request. This is the robust place: nothing can log through uvicorn's handlers before it.
- :func:`install` adds the filter to the ``uvicorn.access`` / ``uvicorn.error`` loggers (and
  the service's own) of the running process: call it at application start-up when the server
  is launched some other way (``uvicorn --factory field_api.main:create_app``, gunicorn), so
  those launchers' access logs are covered too. A logger filter holds whatever handlers the
  launcher configured, before or after. It is idempotent.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any

from field_api.privacy import mask_id_number, mask_phone, redact_secret_paths

FILTER_NAME = "redact_secrets"
# Query parameters whose value is a secret.
_SECRET_QUERY = re.compile(
    r"([?&](?:token|code|otp|secret|key|access_token|api_key)=)[^&#\s\"']*", re.IGNORECASE
)
# An API token (auth.rules.TOKEN_PREFIX + url-safe base64).
_API_TOKEN = re.compile(r"\bfo_[A-Za-z0-9_\-]{16,}")


# Personal numbers that may reach a log line through a query string or a message: mainland
# mobile numbers (11 digits from 1[3-9]) and resident ID numbers (17 digits + digit or X).
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9]\d{9}(?![0-9])")


def redact_text(text: str) -> str:
    """``text`` without tracking tokens in paths, secret query values, API tokens or
    unmasked mobile and ID numbers."""
    text = redact_secret_paths(text)
    text = _SECRET_QUERY.sub(r"\1[redacted]", text)
    text = _API_TOKEN.sub("fo_[redacted]", text)
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    return _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)


def _redact_arg(value: object) -> object:
    return redact_text(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrites a record so its message holds no secret; never drops a record.

    String arguments are redacted one by one first, which keeps the record's shape (uvicorn's
    access formatter unpacks ``record.args``: the path is one argument). When the merged
    message still holds a secret (a template ``"/t/%s"`` with the token as its argument), the
    record is replaced by its redacted, merged message without arguments.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redact_arg(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _redact_arg(v) for k, v in args.items()}
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: logging reports it; leave it be
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def _has_filter(holder: logging.Filterer) -> bool:
    return any(isinstance(f, RedactSecrets) for f in holder.filters)


# Loggers that write request paths or URLs: the server's access and error logs, the
# service's own loggers, and httpx (webhook deliveries log the URL they post to).
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "field_api", "httpx")


def install(loggers: tuple[str, ...] = LOGGERS) -> None:
    """Add :class:`RedactSecrets` to ``loggers`` (once each).

    A logger's filter applies to the records that logger itself emits, before any handler
    sees them, so it holds whatever handlers a launcher configures afterwards.
    """
    for name in loggers:
        logger = logging.getLogger(name)
        if not _has_filter(logger):
            logger.addFilter(RedactSecrets())


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's default logging configuration with :class:`RedactSecrets` on its handlers,
    and the service's own loggers (``field_api.*``) written by the default handler."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})[FILTER_NAME] = {"()": f"{__name__}.RedactSecrets"}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), FILTER_NAME]
    config["loggers"]["field_api"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config
