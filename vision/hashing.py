"""The one streamed sha256 of a file in vision (model cards, photo ids, ledger identity).

vision never imports field_api, so it keeps its own copy of this small helper.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Return the hex sha256 of the file at ``path`` (streamed, bounded memory).

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as fh:
        ...     sha256_file(Path(fh.name))[:12]
        'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
