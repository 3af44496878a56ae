"""The content-addressed file store on disk, shared by every slice that keeps files.

Used by media (photos, videos, thumbnails, resumable uploads), contracts (signed PDFs and
signature images), inspections (batch photos, crops, thumbnails), the demo and the maintenance
sweep; each opens it as ``MediaStore(settings.media_dir)``. :func:`remove_on_rollback` takes a
newly stored file back when the database transaction that refers to it rolls back.

Bytes are streamed into a temporary file inside the media folder (same filesystem, so the
final rename is atomic), hashed while written, then renamed to ``<sha256[:2]>/<sha256>``. A
file whose content is already stored is dropped: each content is stored once however often it
is uploaded. Temporary files are always removed when an upload fails or is cut off.

A process killed while writing cannot remove its temporary file, so each one is named after its
owner, ``<host>-<pid>-<start>-<random>.part`` (the owner id of :mod:`field_api.common.owners`):
:meth:`MediaStore.sweep_temp` removes the files of this host's processes that no longer run at
once, and only by age those of other hosts (a shared media folder) or with foreign names.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from field_api.common import owners
from field_api.common.hashing import file_chunks
from field_api.errors import PayloadTooLarge

SNIFF_BYTES = 64
_HEX = frozenset("0123456789abcdef")
TEMP_MAX_AGE_S = 24 * 3600


def temp_name(owner: str | None = None) -> str:
    """A fresh temporary file name carrying its owner: ``<host>-<pid>-<start>-<random>.part``."""
    parsed = owners.parse(owner or owners.owner_id())
    if parsed is None:
        raise ValueError(f"not an owner id: {owner!r}")
    return f"{parsed.host}-{parsed.pid}-{parsed.start}-{secrets.token_hex(8)}.part"


def temp_owner(name: str) -> str | None:
    """The owner id (``host/pid/start``) a temporary file's name carries, if it has one."""
    if not name.endswith(".part"):
        return None
    parts = name[: -len(".part")].rsplit("-", 3)  # the host name may hold dashes
    if len(parts) != 4:
        return None
    host, pid, start, nonce = parts
    if not host or not pid.isdigit() or not start.isalnum() or not set(nonce) <= _HEX:
        return None
    return f"{host}/{pid}/{start}"


@dataclass(frozen=True)
class SweepResult:
    """Temporary files removed: of dead local processes (at once), and by age."""

    dead_owner: int = 0
    aged: int = 0

    @property
    def removed(self) -> int:
        return self.dead_owner + self.aged


@dataclass(frozen=True)
class StoredBlob:
    """Where content ended up, and whether this call created it."""

    sha256: str
    size_bytes: int
    path: Path
    created: bool


class MediaStore:
    """A folder of immutable files named by their sha256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.uploads_dir = root / "uploads"

    def path_of(self, sha256: str) -> Path:
        """The path of stored content (refuses anything that is not a sha256 hex digest)."""
        if len(sha256) != 64 or not set(sha256) <= _HEX:
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether this content is stored."""
        return self.path_of(sha256).is_file()

    def new_temp(self, *, max_bytes: int | None = None) -> TempFile:
        """A temporary file in the store, hashed as it is written."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return TempFile(self.tmp_dir / temp_name(), max_bytes=max_bytes)

    def promote(self, temp_path: Path, sha256: str) -> StoredBlob:
        """Atomically move a complete temporary file to its content address.

        If the content is already stored the temporary file is removed instead.
        """
        target = self.path_of(sha256)
        size = temp_path.stat().st_size
        if target.is_file():
            temp_path.unlink(missing_ok=True)
            return StoredBlob(sha256, size, target, created=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp_path, target)
        _fsync_dir(target.parent)
        return StoredBlob(sha256, size, target, created=True)

    def put_bytes(self, data: bytes) -> StoredBlob:
        """Store small content (thumbnails) the same way."""
        return self.put_chunks([data])

    def put_file(self, source: Path) -> StoredBlob:
        """Store a file's content, streamed (the source file is left as it is)."""
        return self.put_chunks(file_chunks(source))

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredBlob:
        """Store the concatenated chunks through a temporary file, hashed as written."""
        temp = self.new_temp()
        try:
            for chunk in chunks:
                temp.write(chunk)
            temp.finish()
            return self.promote(temp.path, temp.sha256)
        finally:
            temp.discard()

    def read_verified(self, sha256: str) -> bytes:
        """The stored bytes, checked against their digest (a damaged file is an error, not data)."""
        data = self.path_of(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise OSError(f"stored file {sha256} does not match its digest")
        return data

    def remove(self, sha256: str) -> None:
        """Delete stored content (only used to undo a write whose transaction rolled back)."""
        self.path_of(sha256).unlink(missing_ok=True)

    def sweep_temp(self, *, older_than_s: float = TEMP_MAX_AGE_S) -> SweepResult:
        """Remove temporary files left by crashed processes.

        A file whose name says it belongs to a process of this host that no longer runs goes at
        once; a file of another host, or one whose name carries no owner, once it has not been
        written for ``older_than_s``. Files of running local processes stay.
        """
        if not self.tmp_dir.is_dir():
            return SweepResult()
        cutoff = time.time() - older_than_s
        dead = aged = 0
        here = owners.host()
        for path in self.tmp_dir.glob("*.part"):
            owner = temp_owner(path.name)
            with contextlib.suppress(FileNotFoundError):
                if owner is not None and owner.split("/", 1)[0] == here:
                    if owners.owner_is_gone(owner):
                        path.unlink()
                        dead += 1
                elif path.stat().st_mtime < cutoff:
                    path.unlink()
                    aged += 1
        return SweepResult(dead_owner=dead, aged=aged)


class TempFile:
    """A file being written: counts, hashes and keeps the first bytes for type sniffing."""

    def __init__(self, path: Path, *, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()
        self._fh: BinaryIO | None = path.open("xb")

    def write(self, chunk: bytes) -> None:
        """Append a chunk; 413 as soon as the limit is passed."""
        if self._fh is None:
            raise RuntimeError("temporary file already closed")
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise self._too_large(self.max_bytes)
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        self._hash.update(chunk)
        self._fh.write(chunk)

    def set_limit(self, max_bytes: int) -> None:
        """Change the limit while writing (the file's type or kind became known); 413 at once
        when more than that has been written already."""
        self.max_bytes = max_bytes
        if self.size > max_bytes:
            raise self._too_large(max_bytes)

    @staticmethod
    def _too_large(limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the file is larger than the limit of {limit} bytes",
            code="media.upload_too_large",
            params={"limit_bytes": limit},
        )

    def finish(self) -> None:
        """Flush to disk so a crash after the rename cannot leave a short file."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Close and delete the file if it is still there (no-op after promotion)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    # Make the rename itself durable; not possible on every platform, harmless to skip there.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_CREATED_BLOBS = "field_api.common.storage.created_blobs"


def remove_on_rollback(session: Session, store: MediaStore, blob: StoredBlob) -> None:
    """Delete ``blob`` again if it was created by this call and the session's outermost
    transaction rolls back (a failed upload or signing leaves no file behind).

    ``after_soft_rollback`` fires even when no SQL ran yet (``after_rollback`` would not);
    savepoint rollbacks inside the transaction leave the files alone; a commit keeps them. The
    session's pending files are one list in ``session.info``, with one pair of listeners.
    """
    if not blob.created:
        return
    pending: list[tuple[MediaStore, str]] | None = session.info.get(_CREATED_BLOBS)
    if pending is None:
        pending = []
        session.info[_CREATED_BLOBS] = pending
        event.listen(session, "after_soft_rollback", _undo_created)
        event.listen(session, "after_commit", _keep_created)
    pending.append((store, blob.sha256))


def _undo_created(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is not None or previous.nested:
        return
    pending: list[tuple[MediaStore, str]] = session.info.get(_CREATED_BLOBS, [])
    for store, sha256 in pending:
        store.remove(sha256)
    pending.clear()


def _keep_created(session: Session) -> None:
    session.info.get(_CREATED_BLOBS, []).clear()
