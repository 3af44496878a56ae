"""Resumable (tus) uploads in progress: where their bytes wait until the last one arrives.

Each store has an upload area (``store_of(settings).uploads``):

- :class:`LocalUploads`: one ``<upload id>.part`` file per upload in the media folder's
  ``uploads`` folder, appended to as the bytes arrive (what arrived is kept);
- :class:`S3Uploads`: an S3 multipart upload per upload, under ``<prefix>uploads/<id>/``, so any
  API host can continue an upload another one began. S3 parts other than the last must be at
  least 5 MiB while tus chunks are often smaller, so the bytes not yet making a whole part wait
  in a small **spool object** ``spool-<n>`` (``n``: the parts uploaded so far, at most
  :data:`PART_BYTES` long). A PATCH reads the spool into memory, appends its body, uploads each
  whole part as soon as it is complete and writes the remainder as ``spool-<n>`` when the body
  ends (normally, cut off or refused). The offset is the parts' sizes plus the size of
  ``spool-<n>`` of the current ``n``; a worker dying after a part was uploaded but before the
  new spool was written leaves an offset that counts the part only, and the client re-sends
  from there: no byte that the offset counts is ever lost, and memory stays under one part plus
  one chunk. The last PATCH uploads the spool as the last part and completes the upload.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from field_api.common.s3errors import is_not_found

PART_BYTES = 5 * 1024 * 1024  # S3's smallest part but the last
SNIFF_BYTES = 64
_HEX = frozenset("0123456789abcdef")


def check_upload_id(upload_id: str) -> str:
    """An upload id is 32 hex digits (it names files and keys); ValueError otherwise."""
    if len(upload_id) != 32 or not set(upload_id) <= _HEX:
        raise ValueError(f"not an upload id: {upload_id!r}")
    return upload_id


class UploadWriter(ABC):
    """Appends one PATCH body to an upload: :meth:`write` is quick (memory or a local file),
    :meth:`flush` and :meth:`close` may block on the network (run them off the event loop)."""

    offset: int  # bytes held before this PATCH
    head: bytes  # the upload's first bytes held so far (while fewer than SNIFF_BYTES)

    @abstractmethod
    def write(self, chunk: bytes) -> None: ...

    def wants_flush(self) -> bool:
        return False

    def flush(self) -> None:  # noqa: B027 (a local file has nothing to flush)
        """Upload what makes whole parts (nothing to do on a local file)."""

    @abstractmethod
    def close(self) -> None:
        """Keep every byte written (the spool object, or the file flushed)."""


class UploadArea(ABC):
    """Where unfinished uploads keep their bytes."""

    shared = False  # True: other hosts see the same uploads (a lock must be shared too)

    @abstractmethod
    def create(self, upload_id: str) -> None: ...

    @abstractmethod
    def exists(self, upload_id: str) -> bool: ...

    @abstractmethod
    def offset(self, upload_id: str) -> int:
        """Bytes held (0 for an unknown upload)."""

    @abstractmethod
    def writer(self, upload_id: str) -> UploadWriter: ...

    @abstractmethod
    def complete(self, upload_id: str) -> contextlib.AbstractContextManager[Path]:
        """A file on this host's disk with every byte of the upload, for the block's length
        (moved away by whoever stores it; removed afterwards otherwise)."""

    @abstractmethod
    def discard(self, upload_id: str) -> None:
        """Drop the upload's bytes (finished, cancelled, refused or expired)."""

    @abstractmethod
    def list(self) -> Iterator[tuple[str, datetime]]:
        """Every upload the area holds bytes of, with when they last changed (UTC): the stale
        upload sweep compares them with the upload rows."""

    def lock(self, upload_id: str) -> contextlib.AbstractContextManager[bool]:
        """One PATCH at a time per upload on this host: yields False when another holds it
        (a shared area needs the caller's shared lock instead: yields True)."""
        return contextlib.nullcontext(True)


# --- the media folder ------------------------------------------------------------------------


class _FileWriter(UploadWriter):
    def __init__(self, path: Path) -> None:
        self.offset = path.stat().st_size
        self.head = b""
        if self.offset < SNIFF_BYTES:
            with path.open("rb") as existing:
                self.head = existing.read(SNIFF_BYTES)
        self._fh: BinaryIO = path.open("ab")

    def write(self, chunk: bytes) -> None:
        self._fh.write(chunk)

    def close(self) -> None:
        self._fh.flush()
        self._fh.close()


class LocalUploads(UploadArea):
    """``<id>.part`` files in one folder, appended to (what arrived is kept)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, upload_id: str) -> Path:
        return self.folder / f"{check_upload_id(upload_id)}.part"

    def create(self, upload_id: str) -> None:
        path = self.path(upload_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=False)

    def exists(self, upload_id: str) -> bool:
        return self.path(upload_id).exists()

    def offset(self, upload_id: str) -> int:
        path = self.path(upload_id)
        return path.stat().st_size if path.exists() else 0

    def writer(self, upload_id: str) -> UploadWriter:
        return _FileWriter(self.path(upload_id))

    @contextlib.contextmanager
    def complete(self, upload_id: str) -> Iterator[Path]:
        path = self.path(upload_id)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)  # no-op when it was stored (renamed away)

    def discard(self, upload_id: str) -> None:
        self.path(upload_id).unlink(missing_ok=True)

    def list(self) -> Iterator[tuple[str, datetime]]:
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("*.part"):
            with contextlib.suppress(FileNotFoundError, ValueError):
                changed = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                yield check_upload_id(path.name[: -len(".part")]), changed

    @contextlib.contextmanager
    def lock(self, upload_id: str) -> Iterator[bool]:
        """An exclusive ``flock`` on the part file (across the processes of this host)."""
        with self.path(upload_id).open("ab") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --- an S3 bucket ----------------------------------------------------------------------------


@dataclass
class _S3State:
    """What the bucket holds of one upload."""

    multipart_id: str
    parts: list[dict[str, Any]] = field(default_factory=list)  # PartNumber, ETag, Size
    spool: bytes = b""
    completed_size: int | None = None  # the multipart upload was completed already

    @property
    def size(self) -> int:
        if self.completed_size is not None:
            return self.completed_size
        return sum(int(p["Size"]) for p in self.parts) + len(self.spool)


class _S3Writer(UploadWriter):
    def __init__(self, area: S3Uploads, upload_id: str, state: _S3State) -> None:
        self.area, self.upload_id, self.state = area, upload_id, state
        self.offset = state.size
        self.buffer = bytearray(state.spool)
        self.parts = len(state.parts)
        self._spool_at_start = self.parts
        self.head = bytes(self.buffer[:SNIFF_BYTES]) if not state.parts else b""
        self._written = False

    def write(self, chunk: bytes) -> None:
        self.buffer += chunk
        self._written = True

    def wants_flush(self) -> bool:
        return len(self.buffer) >= PART_BYTES

    def flush(self) -> None:
        while len(self.buffer) >= PART_BYTES:
            self.area.upload_part(
                self.upload_id, self.state, self.parts + 1, bytes(self.buffer[:PART_BYTES])
            )
            self.parts += 1
            del self.buffer[:PART_BYTES]

    def close(self) -> None:
        if not self._written:
            return  # the spool is as it was
        self.flush()
        area, uid = self.area, self.upload_id
        if self.buffer:
            area.put(area.key(uid, f"spool-{self.parts}"), bytes(self.buffer))
        if self.parts != self._spool_at_start:  # the old spool is inside a part now
            area.delete(area.key(uid, f"spool-{self._spool_at_start}"))


class S3Uploads(UploadArea):
    """S3 multipart uploads with a spool object for the bytes short of a whole part."""

    shared = True

    def __init__(
        self, client: Any, bucket: str, prefix: str, temp_path: Callable[[], Path]
    ) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.temp_path = temp_path

    def key(self, upload_id: str, name: str) -> str:
        return f"{self.prefix}{check_upload_id(upload_id)}/{name}"

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def _get(self, key: str) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        with contextlib.closing(body):
            return bytes(body.read())

    def create(self, upload_id: str) -> None:
        started = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self.key(upload_id, "data")
        )
        meta = json.dumps({"multipart_id": started["UploadId"]}).encode()
        self.put(self.key(upload_id, "meta"), meta)

    def _multipart_id(self, upload_id: str) -> str | None:
        meta = self._get(self.key(upload_id, "meta"))
        return None if meta is None else str(json.loads(meta)["multipart_id"])

    def exists(self, upload_id: str) -> bool:
        return self._multipart_id(upload_id) is not None

    def state(self, upload_id: str) -> _S3State | None:
        multipart_id = self._multipart_id(upload_id)
        if multipart_id is None:
            return None
        state = _S3State(multipart_id)
        try:
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=self.key(upload_id, "data"), UploadId=multipart_id
            )
            for page in pages:
                state.parts.extend(page.get("Parts", []))
        except Exception as exc:
            if not is_not_found(exc):
                raise
            try:  # completed, then interrupted before it was recorded
                head = self.client.head_object(
                    Bucket=self.bucket, Key=self.key(upload_id, "data")
                )
            except Exception as gone:
                if is_not_found(gone):
                    return None
                raise
            state.completed_size = int(head["ContentLength"])
            return state
        state.parts.sort(key=lambda p: int(p["PartNumber"]))
        state.spool = self._get(self.key(upload_id, f"spool-{len(state.parts)}")) or b""
        return state

    def offset(self, upload_id: str) -> int:
        state = self.state(upload_id)
        return 0 if state is None else state.size

    def writer(self, upload_id: str) -> UploadWriter:
        state = self.state(upload_id)
        if state is None or state.completed_size is not None:
            raise FileNotFoundError(f"upload {upload_id} is not open")
        return _S3Writer(self, upload_id, state)

    def upload_part(self, upload_id: str, state: _S3State, number: int, data: bytes) -> None:
        self.client.upload_part(
            Bucket=self.bucket, Key=self.key(upload_id, "data"), UploadId=state.multipart_id,
            PartNumber=number, Body=data,
        )  # fmt: skip

    def _finish_multipart(self, upload_id: str, state: _S3State) -> None:
        """Upload the spool as the last part and complete the multipart upload."""
        parts = [{"PartNumber": int(p["PartNumber"]), "ETag": p["ETag"]} for p in state.parts]
        if state.spool or not parts:
            number = len(parts) + 1
            done = self.client.upload_part(
                Bucket=self.bucket, Key=self.key(upload_id, "data"),
                UploadId=state.multipart_id, PartNumber=number, Body=state.spool,
            )  # fmt: skip
            parts.append({"PartNumber": number, "ETag": done["ETag"]})
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key(upload_id, "data"), UploadId=state.multipart_id,
            MultipartUpload={"Parts": parts},
        )  # fmt: skip

    @contextlib.contextmanager
    def complete(self, upload_id: str) -> Iterator[Path]:
        state = self.state(upload_id)
        if state is None:
            raise FileNotFoundError(f"upload {upload_id} is not open")
        if state.completed_size is None:
            self._finish_multipart(upload_id, state)
        target = self.temp_path()
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(upload_id, "data"))
            with contextlib.closing(body["Body"]) as src, target.open("xb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            yield target
        finally:
            target.unlink(missing_ok=True)

    def list(self) -> Iterator[tuple[str, datetime]]:
        """Uploads with objects (meta, spools, a completed file) or an open multipart upload."""
        latest: dict[str, datetime] = {}

        def seen(key: str, when: datetime) -> None:
            upload_id = key[len(self.prefix) :].split("/", 1)[0]
            if len(upload_id) == 32 and set(upload_id) <= _HEX:
                latest[upload_id] = max(when, latest.get(upload_id, when))

        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                seen(str(obj["Key"]), obj["LastModified"].astimezone(UTC))
        listed = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix)
        for upload in listed.get("Uploads", []):
            seen(str(upload["Key"]), upload["Initiated"].astimezone(UTC))
        yield from latest.items()

    def discard(self, upload_id: str) -> None:
        """Abort its multipart uploads (even one whose marker was never written), then delete
        its objects, the marker last."""
        open_ = self.client.list_multipart_uploads(
            Bucket=self.bucket, Prefix=self.key(upload_id, "")
        )
        for upload in open_.get("Uploads", []):
            with contextlib.suppress(Exception):  # completed or aborted meanwhile
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.key(upload_id, ""))
        keys = [str(obj["Key"]) for obj in listed.get("Contents", [])]
        for key in sorted(keys, key=lambda k: k.endswith("/meta")):  # the marker goes last
            self.delete(key)

