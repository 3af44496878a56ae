"""The one domain error tree and its mapping to HTTP.

::

    DomainError                      400
    ├── BadRequest                   400
    ├── Unauthorized                 401
    ├── Forbidden                    403
    ├── NotFound                     404
    ├── Conflict                     409
    │   ├── InvalidTransition        409
    │   ├── IdempotencyConflict      409
    │   └── OutOfStock               409
    ├── PreconditionFailed           412
    ├── PayloadTooLarge              413
    ├── UnsupportedMedia             415
    ├── ValidationFailed             422
    └── ServiceUnavailable           503

Every error leaves the service as ``{"error": <class name>, "detail": <text or list>}``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the service reports to a client."""

    status_code = 400

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None) -> None:
        self.detail = detail if detail is not None else self.__class__.__name__
        self.headers = headers
        super().__init__(str(self.detail))

    @property
    def error(self) -> str:
        return self.__class__.__name__

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "detail": self.detail}


class BadRequest(DomainError):
    status_code = 400


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class InvalidTransition(Conflict):
    pass


class IdempotencyConflict(Conflict):
    pass


class OutOfStock(Conflict):
    pass


class PreconditionFailed(DomainError):
    status_code = 412


class PayloadTooLarge(DomainError):
    status_code = 413


class UnsupportedMedia(DomainError):
    status_code = 415


class ValidationFailed(DomainError):
    status_code = 422


class ServiceUnavailable(DomainError):
    status_code = 503
