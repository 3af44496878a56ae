"""The one domain error tree and its mapping to HTTP.

::

    DomainError                      400  bad_request
    ├── BadRequest                   400  bad_request
    ├── Unauthorized                 401  unauthorized
    ├── Forbidden                    403  forbidden
    ├── NotFound                     404  not_found
    ├── Conflict                     409  conflict
    │   ├── InvalidTransition        409  invalid_transition
    │   ├── IdempotencyConflict      409  idempotency_conflict
    │   └── OutOfStock               409  out_of_stock
    ├── PreconditionFailed           412  precondition_failed
    ├── PayloadTooLarge              413  payload_too_large
    ├── UnsupportedMedia             415  unsupported_media
    ├── ValidationFailed             422  validation_failed
    └── ServiceUnavailable           503  service_unavailable

(the last column is the class's default ``code``; slices subclass these, e.g.
``common.calendar.CalendarError``.)

Every 4xx and 5xx leaves the service as the ``ErrorBody`` of the OpenAPI::

    {"error": <class name>, "code": <stable dotted code>, "params": {...}, "detail": <text>}

``code`` is what clients rely on: stable, dotted ``<slice>.<what>`` (``work_order.not_found``,
``kit.out_of_stock``, ``contract.otp_expired``), every one listed with its zh-CN and en message
template in :mod:`field_api.error_codes` (the templates use ``params``: ids, limits, names, never
personal data or secrets). ``detail`` is the message of the code rendered in the request's
language (``field_api.language.language_of``: cookie ``fo_lang``, then ``Accept-Language``, then
zh-CN): a sentence for a person, never for a program to parse. For ``request.invalid`` it names
the invalid fields; the structured list stays in ``params.errors``.

The detail a raise site passes is English for logs and callers in the service (``exc.detail``,
``body()`` without a language); the client gets the rendered template. A raise may pass
structured detail: a mapping (its ``message`` is for logs, its other keys, e.g. ``shortages`` or
``rows``, join ``params``) or a list of problems (``params.problems``). Raise with both::

    raise NotFound(f"work order {order_id} not found", code="work_order.not_found",
                   params={"order_id": order_id})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from field_api.error_codes import field_errors_sentence, render


class DomainError(Exception):
    """Base of every error the service reports to a client."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        detail: Any = None,
        *,
        code: str | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail = detail if detail is not None else self.__class__.__name__
        self.params: dict[str, Any] = {}
        if isinstance(detail, Mapping):  # structured: all but its message join the params
            self.params.update({k: v for k, v in detail.items() if k != "message"})
        elif isinstance(detail, list | tuple):  # a list of problems
            self.params["problems"] = [str(p) for p in detail]
        self.params.update(params or {})
        if code is not None:
            self.code = code
        self.headers = headers
        super().__init__(str(self.detail))

    @property
    def error(self) -> str:
        return self.__class__.__name__

    def message(self, language: str) -> str:
        """The message of the code in ``language``, filled from ``params`` (for invalid fields
        the sentence naming each, as the framework's own validation answers)."""
        errors = self.params.get("errors")
        if self.code == "request.invalid" and isinstance(errors, list):
            return field_errors_sentence(errors, language)
        return render(self.code, self.params, language)

    def body(self, language: str | None = None) -> dict[str, Any]:
        """The error body; ``detail`` rendered in ``language``, or the English log text."""
        detail = self.detail if language is None else self.message(language)
        return error_body(self.error, self.code, detail, self.params)


class BadRequest(DomainError):
    status_code = 400
    code = "bad_request"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class OutOfStock(Conflict):
    code = "out_of_stock"


class PreconditionFailed(DomainError):
    status_code = 412
    code = "precondition_failed"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMedia(DomainError):
    status_code = 415
    code = "unsupported_media"


class ValidationFailed(DomainError):
    status_code = 422
    code = "validation_failed"


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"


def error_body(
    error: str,
    code: str,
    detail: Any,
    params: dict[str, Any] | None = None,
    *,
    language: str | None = None,
) -> dict[str, Any]:
    """The four-key body for errors raised outside the tree (framework, middleware).

    With ``language``, ``detail`` is the code's message rendered in it (the English ``detail``
    given is then for logs only).
    """
    params = dict(params or {})
    if language is not None:
        detail = render(code, params, language)
    return {"error": error, "code": code, "params": params, "detail": detail}


class FieldError(BaseModel):
    """One invalid request field (``params.errors`` of ``request.invalid``)."""

    loc: list[str | int] = Field(description="Where: body, query, path or header, then names.")
    type: str = Field(description="Pydantic's error type, e.g. missing, int_parsing.")
    msg: str = Field(description="Pydantic's English text (the readable sentence is detail).")


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of the service.

    ``code`` is stable (see ``field_api.error_codes`` for the list with zh-CN and en message
    templates filled from ``params``); ``detail`` is that message rendered in the request's
    language (cookie ``fo_lang``, then ``Accept-Language``, then zh-CN). Structured data is in
    ``params``: for ``request.invalid`` the field errors (``params.errors``), for a few codes
    more, e.g. ``kit.out_of_stock`` its ``shortages``, ``network.rows_invalid`` its ``rows``,
    ``checklist.readings_invalid`` its ``problems``.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "NotFound",
                    "code": "work_order.not_found",
                    "params": {"order_id": 42},
                    "detail": "工单 42 不存在",
                }
            ]
        }
    )

    error: str = Field(description="The error class, e.g. NotFound, ValidationFailed.")
    code: str = Field(description="Stable dotted code, e.g. work_order.not_found.")
    params: dict[str, Any] = Field(
        description="What the message of the code needs (ids, limits, names); for "
        "request.invalid: {errors: [FieldError]}."
    )
    detail: str = Field(
        description="The code's message in the request's language (zh-CN by default, en by "
        "Accept-Language or the fo_lang cookie), for a person to read."
    )
