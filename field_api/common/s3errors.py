"""botocore's failures as the service's errors (shared by the store and its upload area)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from field_api.errors import ServiceUnavailable


def is_not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


@contextlib.contextmanager
def s3_errors(key: str) -> Iterator[None]:
    """botocore's failures (unreachable endpoint, refused credentials, missing bucket) as a 503
    naming the key; the message carries no credentials."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        if is_not_found(exc):
            raise
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        raise ServiceUnavailable(
            f"the object store refused {key}: {code}",
            code="storage.unavailable",
            params={"reason": code},
        ) from None
    except BotoCoreError as exc:
        raise ServiceUnavailable(
            f"the object store is unreachable ({type(exc).__name__})",
            code="storage.unavailable",
            params={"reason": type(exc).__name__},
        ) from None
