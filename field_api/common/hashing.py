"""The one streamed sha256 of the service: files, open file objects and chunk streams are hashed
in bounded memory, read in chunks (never whole).

Used by the media slice (stored content, the decoded-pixel digest of a photo), the inspections
slice (batch records), the web shell (the static assets' version) and the benches.
(:class:`field_api.common.storage.TempFile` hashes the bytes as they are written instead.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 1024 * 1024
"""How much is read at a time."""


def read_chunks(fh: BinaryIO, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The rest of an open binary file, ``chunk_bytes`` at a time."""
    while chunk := fh.read(chunk_bytes):
        yield chunk


def file_chunks(path: Path, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """A file's bytes, ``chunk_bytes`` at a time (the file is closed when they are consumed)."""
    with path.open("rb") as fh:
        yield from read_chunks(fh, chunk_bytes=chunk_bytes)


def sha256_chunks(chunks: Iterable[bytes]) -> str:
    """The sha256 hex digest of the concatenated chunks."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def sha256_fileobj(fh: BinaryIO, *, chunk_bytes: int = CHUNK_BYTES) -> str:
    """The sha256 hex digest of the rest of an open binary file."""
    return sha256_chunks(read_chunks(fh, chunk_bytes=chunk_bytes))


def sha256_file(path: Path, *, chunk_bytes: int = CHUNK_BYTES) -> str:
    """The sha256 hex digest of a file."""
    return sha256_chunks(file_chunks(path, chunk_bytes=chunk_bytes))
