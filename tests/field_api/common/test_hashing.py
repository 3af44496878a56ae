"""The one streamed sha256: a file, an open file and a chunk stream hash as hashlib does whole."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from field_api.common.hashing import file_chunks, sha256_chunks, sha256_file, sha256_fileobj


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 7])
def test_every_flavour_agrees_with_hashing_the_whole(tmp_path: Path, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path, chunk_bytes=4096) == expected
    assert sha256_fileobj(io.BytesIO(data), chunk_bytes=4096) == expected
    assert sha256_chunks([data[:3], data[3:]]) == expected
    assert sha256_file(path) == expected


def test_files_are_read_in_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"a" * 10_000)
    sizes = [len(chunk) for chunk in file_chunks(path, chunk_bytes=4096)]
    assert sizes == [4096, 4096, 1808]


def test_an_open_file_is_hashed_from_where_it_stands() -> None:
    fh = io.BytesIO(b"headerbody")
    fh.read(6)
    assert sha256_fileobj(fh) == hashlib.sha256(b"body").hexdigest()
