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
``deadlines.calendar.CalendarError``.)

Every 4xx and 5xx leaves the service as the ``ErrorBody`` of the OpenAPI::

    {"error": <class name>, "code": <stable dotted code>, "params": {...}, "detail": <text>}

``code`` is what clients rely on: stable, dotted ``<slice>.<what>`` (``work_order.not_found``,
``kit.out_of_stock``, ``contract.otp_expired``), every one listed with its zh-CN and en message
template in :mod:`field_api.error_codes` (the templates use ``params``: ids, limits, names, never
personal data or secrets). ``detail`` is English text for people reading logs (a list of field
errors for ``request.invalid``). Raise with both::

    raise NotFound(f"work order {order_id} not found", code="work_order.not_found",
                   params={"order_id": order_id})
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
        if code is not None:
            self.code = code
        self.params: dict[str, Any] = dict(params or {})
        self.headers = headers
        super().__init__(str(self.detail))

    @property
    def error(self) -> str:
        return self.__class__.__name__

    def body(self) -> dict[str, Any]:
        return error_body(self.error, self.code, self.detail, self.params)


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
    error: str, code: str, detail: Any, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The four-key body for errors raised outside the tree (framework, middleware)."""
    return {"error": error, "code": code, "params": dict(params or {}), "detail": detail}


class FieldError(BaseModel):
    """One invalid request field (``params.errors`` of ``request.invalid``)."""

    loc: list[str | int] = Field(description="Where: body, query, path or header, then names.")
    type: str = Field(description="Pydantic's error type, e.g. missing, int_parsing.")
    msg: str = Field(description="English text.")


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of the service.

    ``code`` is stable (see ``field_api.error_codes`` for the list with zh-CN and en message
    templates filled from ``params``); ``detail`` is English text (for ``request.invalid`` the
    list of field errors, also in ``params.errors``; a few codes add structured detail, e.g.
    ``kit.out_of_stock`` its shortages).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "NotFound",
                    "code": "work_order.not_found",
                    "params": {"order_id": 42},
                    "detail": "work order 42 not found",
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
    detail: Any = Field(description="English text (request.invalid: the list of FieldError).")
