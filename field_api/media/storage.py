"""The content-addressed media store on disk.

Bytes are streamed into a temporary file inside the media folder (same filesystem, so the
final rename is atomic), hashed while written, then renamed to ``<sha256[:2]>/<sha256>``. A
file whose content is already stored is dropped: each content is stored once however often it
is uploaded. Temporary files are always removed when an upload fails or is cut off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from field_api.errors import PayloadTooLarge

SNIFF_BYTES = 64
_HEX = frozenset("0123456789abcdef")


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
        return TempFile(self.tmp_dir / f"{secrets.token_hex(16)}.part", max_bytes=max_bytes)

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
        temp = self.new_temp()
        try:
            temp.write(data)
            temp.finish()
            return self.promote(temp.path, temp.sha256)
        finally:
            temp.discard()

    def remove(self, sha256: str) -> None:
        """Delete stored content (only used to undo a write whose transaction rolled back)."""
        self.path_of(sha256).unlink(missing_ok=True)

    def sweep_temp(self, *, older_than_s: float = 24 * 3600) -> int:
        """Remove temporary files left by a crashed process; returns how many."""
        if not self.tmp_dir.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.tmp_dir.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed


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
            raise PayloadTooLarge(f"the file is larger than the limit of {self.max_bytes} bytes")
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        self._hash.update(chunk)
        self._fh.write(chunk)

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


def sha256_of_file(path: Path, *, chunk_bytes: int = 1024 * 1024) -> str:
    """Hash a file in bounded memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    # Make the rename itself durable; not possible on every platform, harmless to skip there.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
