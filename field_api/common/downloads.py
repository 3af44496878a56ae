"""Stored files as HTTP responses, from either storage backend (no presigned URLs: the API
sets the checked content type, ``nosniff`` and Content-Disposition itself)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import FileResponse, Response, StreamingResponse

from field_api.common.storage import CHUNK_BYTES, ObjectStore


def stored_response(
    store: ObjectStore, sha256: str, *, media_type: str, headers: Mapping[str, str]
) -> Response:
    """The stored content as the response body: the file itself on the local backend (range
    requests and sendfile included), else the object's bytes streamed in chunks with its
    Content-Length. ``headers`` are sent as given (ETag, Content-Disposition, nosniff...).

    Raises:
        FileNotFoundError: the content is not stored.
    """
    path = store.local_file(sha256)
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"stored file {sha256} is missing")
        return FileResponse(path, media_type=media_type, headers=dict(headers))
    size = store.size(sha256)
    if size is None:
        raise FileNotFoundError(f"stored object {sha256} is missing")
    return StreamingResponse(
        store.chunks(sha256, CHUNK_BYTES),
        media_type=media_type,
        headers={**headers, "Content-Length": str(size)},
    )
