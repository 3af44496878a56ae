"""Receiving request bodies straight into the media store (multipart and tus PATCH).

The body is never held whole in memory: each chunk from the ASGI stream goes through the
streaming multipart parser into a :class:`~field_api.common.storage.TempFile`. Whatever goes
wrong — the client drops the connection, the file passes its size limit, the form is
malformed, the client stops sending — the temporary file is deleted before the error
propagates.

Size limits apply while the bytes stream in, not after. A body starts under the largest limit
of any kind (a video's); as soon as the file's first bytes are in, ``limit_for`` (given the form
fields received so far and those bytes) narrows it to the limit of what the file is: a photo
is cut off at the photo limit of its kind. Multipart fields arrive in the client's order: when
``kind`` comes before the file (as the crew app and the documented form send it) the kind's
own limit applies at once; when it comes after, the largest photo limit applies while
streaming and the kind's limit is checked once the form is complete.

A client that declares a body and stops sending is cut off by :func:`idle_limited`: each read
waits at most the configured idle time (``FIELDOPS_MEDIA_BODY_IDLE_TIMEOUT_S``), then the
request ends with 408 and the connection is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import anyio
from python_multipart.multipart import parse_options_header

from field_api.common.storage import SNIFF_BYTES, ObjectStore, TempFile
from field_api.common.uploads import UploadWriter
from field_api.errors import (
    BadRequest,
    DomainError,
    PayloadTooLarge,
    UnsupportedMedia,
    ValidationFailed,
)

MAX_FIELD_BYTES = 4096
MAX_FIELDS = 16

# The limit of a file once its first bytes (and the fields sent before it) are known.
LimitFor = Callable[[dict[str, str], bytes], int]


class BodyIdleTimeout(DomainError):
    """The client stopped sending the body it declared (408; the connection is closed)."""

    status_code = 408
    code = "media.body_idle_timeout"


async def idle_limited(stream: AsyncIterator[bytes], idle_s: float) -> AsyncIterator[bytes]:
    """Pass a request body through, ending it with :class:`BodyIdleTimeout` when no chunk
    arrives for ``idle_s`` seconds (a client that declared a Content-Length and went quiet)."""
    chunks = stream.__aiter__()
    while True:
        try:
            with anyio.fail_after(idle_s):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise BodyIdleTimeout(
                f"no request body data arrived for {idle_s:g} s; the upload was dropped",
                code="media.body_idle_timeout",
                params={"idle_s": idle_s},
                headers={"Connection": "close"},
            ) from exc
        yield chunk


@dataclass
class ReceivedUpload:
    """A multipart form with exactly one file, received into the store's temp folder."""

    fields: dict[str, str]
    file: TempFile
    file_name: str | None
    extra: dict[str, str] = field(default_factory=dict)


class _MultipartReader:
    """A streaming multipart/form-data reader.

    The body's bytes are searched for the part delimiter with ``bytes.find`` (C speed), so a
    file part costs little more than hashing and writing it; python-multipart's pure-Python
    state machine took several times longer per megabyte.
    """

    def __init__(
        self,
        boundary: bytes,
        store: ObjectStore,
        max_file_bytes: int,
        limit_for: LimitFor | None = None,
    ) -> None:
        self.store = store
        self.max_file_bytes = max_file_bytes
        self.limit_for = limit_for
        self._limited = limit_for is None
        self.first = b"--" + boundary
        self.delimiter = b"\r\n--" + boundary
        self.fields: dict[str, str] = {}
        self.file: TempFile | None = None
        self.file_name: str | None = None
        self.ended = False
        self._buf = bytearray()
        self._state = "preamble"
        self._name: str | None = None
        self._is_file = False
        self._value = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        while self._step():
            pass

    def _step(self) -> bool:
        """Consume what the buffer allows; True while progress is possible."""
        buf = self._buf
        if self._state == "preamble":
            idx = buf.find(self.first)
            if idx < 0:
                if len(buf) > MAX_FIELD_BYTES:
                    raise BadRequest(
                        "no multipart boundary found in the body",
                        code="media.multipart_boundary",
                    )
                return False
            del buf[: idx + len(self.first)]
            self._state = "after_delimiter"
            return True
        if self._state == "after_delimiter":
            if len(buf) < 2:
                return False
            if buf[:2] == b"--":
                self._state = "done"
                self.ended = True
                buf.clear()
                return False
            if buf[:2] != b"\r\n":
                raise BadRequest("malformed multipart delimiter", code="media.multipart_malformed")
            del buf[:2]
            self._state = "headers"
            return True
        if self._state == "headers":
            idx = buf.find(b"\r\n\r\n")
            if idx < 0:
                if len(buf) > MAX_FIELD_BYTES:
                    raise BadRequest(
                        "multipart part headers are too long",
                        code="media.multipart_malformed",
                    )
                return False
            self._start_part(bytes(buf[:idx]))
            del buf[: idx + 4]
            self._state = "body"
            return True
        if self._state == "body":
            idx = buf.find(self.delimiter)
            if idx < 0:
                # keep a tail that could be the start of a delimiter split across chunks
                keep = len(self.delimiter) - 1
                if len(buf) > keep:
                    self._data(bytes(buf[: len(buf) - keep]))
                    del buf[: len(buf) - keep]
                return False
            self._data(bytes(buf[:idx]))
            self._end_part()
            del buf[: idx + len(self.delimiter)]
            self._state = "after_delimiter"
            return True
        buf.clear()  # epilogue after the closing delimiter is ignored
        return False

    def _start_part(self, raw_headers: bytes) -> None:
        headers: dict[str, bytes] = {}
        for line in raw_headers.split(b"\r\n"):
            key, sep, value = line.partition(b":")
            if not sep:
                raise BadRequest(
                    "malformed multipart part header",
                    code="media.multipart_malformed",
                )
            headers[key.strip().decode("latin-1").lower()] = value.strip()
        disposition, options = parse_options_header(headers.get("content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise BadRequest(
                "a multipart part without a form-data name",
                code="media.multipart_malformed",
            )
        self._name = options[b"name"].decode("utf-8", errors="replace")
        self._value = bytearray()
        self._is_file = b"filename" in options
        if self._is_file:
            if self.file is not None:
                raise BadRequest("send one file per upload", code="media.one_file_only")
            raw = options[b"filename"].decode("utf-8", errors="replace")
            # keep only the base name, for display; the stored name is the sha256
            self.file_name = raw.replace("\\", "/").rsplit("/", 1)[-1][:255] or None
            self.file = self.store.new_temp(max_bytes=self.max_file_bytes)
        elif len(self.fields) >= MAX_FIELDS:
            raise BadRequest(
                f"at most {MAX_FIELDS} form fields",
                code="media.too_many_fields",
                params={"max_fields": MAX_FIELDS},
            )

    def _data(self, data: bytes) -> None:
        if not data:
            return
        if self._is_file:
            assert self.file is not None
            self.file.write(data)
            if not self._limited and len(self.file.head) >= SNIFF_BYTES:
                self._narrow_limit()
            return
        self._value += data
        if len(self._value) > MAX_FIELD_BYTES:
            raise PayloadTooLarge(
                f"form field {self._name!r} is longer than {MAX_FIELD_BYTES}",
                code="media.form_field_too_long",
                params={"field": self._name, "limit_bytes": MAX_FIELD_BYTES},
            )

    def _end_part(self) -> None:
        if not self._is_file and self._name is not None:
            self.fields[self._name] = self._value.decode("utf-8", errors="replace")
        if self._is_file and not self._limited and self.file is not None and self.file.head:
            self._narrow_limit()  # a file shorter than the sniffed head
        self._is_file = False

    def _narrow_limit(self) -> None:
        """The file's type is known from its first bytes: apply its own limit from now on."""
        assert self.file is not None and self.limit_for is not None
        self._limited = True
        self.file.set_limit(self.limit_for(dict(self.fields), self.file.head))


async def receive_multipart(
    content_type: str,
    stream: AsyncIterator[bytes],
    store: ObjectStore,
    *,
    max_file_bytes: int,
    limit_for: LimitFor | None = None,
) -> ReceivedUpload:
    """Parse a ``multipart/form-data`` body with one file part into the media store.

    ``max_file_bytes`` applies until the file's first :data:`SNIFF_BYTES` bytes are in; then
    ``limit_for(fields so far, first bytes)`` gives the file's own limit (it may raise to
    refuse the file at once: an unsupported type, a declared length over the limit).

    Raises:
        UnsupportedMedia: the body is not multipart/form-data.
        BadRequest: malformed multipart, a body cut before its closing boundary, no file.
        PayloadTooLarge: the file passed its limit (reading stops there).
        BodyIdleTimeout: raised by an :func:`idle_limited` stream (the file is removed).
    """
    mime, options = parse_options_header(content_type)
    if mime != b"multipart/form-data":
        raise UnsupportedMedia(
            "send the file as multipart/form-data (or use tus for large files)",
            code="media.multipart_required",
        )
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise BadRequest(
            "multipart/form-data without a valid boundary",
            code="media.multipart_boundary",
        )
    reader = _MultipartReader(boundary, store, max_file_bytes, limit_for)
    try:
        async for chunk in stream:
            if chunk:
                reader.feed(chunk)
        if not reader.ended:
            raise BadRequest(
                "the upload ended before the multipart closing boundary",
                code="media.multipart_malformed",
            )
        if reader.file is None:
            raise BadRequest("no file part in the upload", code="media.no_file")
        reader.file.finish()
    except BaseException:
        # disconnects, limits, cancellation, bad bodies: nothing half-written stays behind
        _discard(reader.file)
        raise
    return ReceivedUpload(fields=reader.fields, file=reader.file, file_name=reader.file_name)


def _discard(temp: TempFile | None) -> None:
    if temp is not None:
        temp.discard()


async def append_stream(
    writer: UploadWriter,
    stream: AsyncIterator[bytes],
    *,
    max_bytes: int,
    check_head: Callable[[bytes], None] | None = None,
) -> tuple[int, bool]:
    """Append a tus PATCH body to a partial upload, keeping every byte that arrived.

    Returns the number of bytes appended and whether the body ended normally (False when the
    client went away: what arrived is kept so the client can resume from the new offset).
    ``check_head`` sees the upload's first :data:`SNIFF_BYTES` bytes as soon as they are in
    (the file's type is known then) and may raise to stop the upload at once. The writer is
    closed however the body ends, so what arrived is kept (a part file, or S3 parts and the
    spool object: field_api.common.uploads); its network work runs off the event loop.

    Raises:
        ValidationFailed: the body is longer than the bytes still expected.
        BodyIdleTimeout: raised by an :func:`idle_limited` stream (what arrived is kept).
    """
    from starlette.requests import ClientDisconnect

    written = 0
    head = writer.head
    need_head = check_head is not None and writer.offset < SNIFF_BYTES
    try:
        async for chunk in stream:
            if written + len(chunk) > max_bytes:
                raise ValidationFailed(
                    "the PATCH body is longer than the declared Upload-Length",
                    code="media.tus_body_too_long",
                )
            writer.write(chunk)
            written += len(chunk)
            if writer.wants_flush():
                await anyio.to_thread.run_sync(writer.flush)
            if need_head and check_head is not None:
                head += chunk[: SNIFF_BYTES - len(head)]
                if len(head) >= SNIFF_BYTES:
                    need_head = False
                    check_head(head)
    except ClientDisconnect:
        return written, False
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(writer.close)
    return written, True
