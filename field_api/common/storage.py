"""The content-addressed file store: one interface, two backends, shared by every slice that
keeps files.

Used by media (photos, videos, thumbnails, resumable uploads), contracts (signed PDFs and
signature images), inspections (batch photos, crops, thumbnails), the demo and the maintenance
sweep; each gets it as ``store_of(settings)``: an :class:`ObjectStore` built once per
:class:`~field_api.config.Settings` value (``settings.storage``):

- :class:`LocalStore` (``FIELDOPS_STORAGE_BACKEND=local``, the default): files under the media
  folder, ``<sha256[:2]>/<sha256>``;
- :class:`S3Store` (``s3``): the same keys (under ``FIELDOPS_S3_PREFIX``) in an S3-compatible
  bucket (AWS, MinIO, Ceph, SeaweedFS) through boto3.

:func:`remove_on_rollback` takes a newly stored file back when the database transaction that
refers to it rolls back.

Bytes are streamed into a temporary file in the media folder's ``tmp`` folder (on both
backends), hashed while written, then put under their content address: renamed (same
filesystem, so atomic) or uploaded. Content already stored is dropped: each content is stored
once however often it is uploaded. Temporary files are always removed when an upload fails or
is cut off. Reads stream in chunks (:meth:`ObjectStore.chunks`); code that needs a file on disk
(image decoding) gets one with :meth:`ObjectStore.local_copy` (the stored file itself, or a
temporary download removed afterwards).

A process killed while writing cannot remove its temporary file, so each one is named after its
owner, ``<host>-<pid>-<start>-<random>.part`` (the owner id of :mod:`field_api.common.owners`):
:meth:`ObjectStore.sweep_temp` removes the files of this host's processes that no longer run at
once, and only by age those of other hosts (a shared media folder) or with foreign names.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
import shutil
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from field_api.common import owners
from field_api.common.hashing import file_chunks
from field_api.common.s3errors import is_not_found, s3_errors
from field_api.common.uploads import LocalUploads, S3Uploads, UploadArea
from field_api.config import Settings, StorageSettings
from field_api.errors import PayloadTooLarge

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

SNIFF_BYTES = 64
_HEX = frozenset("0123456789abcdef")
TEMP_MAX_AGE_S = 24 * 3600
CHUNK_BYTES = 1024 * 1024
# The staging folders under the media folder, and the audit checkpoints a bucket keeps beside
# the content (field_api.audit.checkpoints): never content keys.
STAGING_DIRS = ("tmp", "uploads", "audit-checkpoints")


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
    path: Path | None  # the file on the local backend; None in a bucket
    created: bool

    @property
    def key(self) -> str:
        """The content's key in the store."""
        return key_of(self.sha256)


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object as listed: its key, size and last modification (UTC)."""

    key: str
    size_bytes: int
    modified: datetime


def key_of(sha256: str) -> str:
    """The key of content: ``<sha256[:2]>/<sha256>`` (refuses anything but a sha256 hex digest)."""
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return f"{sha256[:2]}/{sha256}"


class ObjectStore(ABC):
    """Immutable files named by their sha256, received through a local staging folder.

    ``staging`` (the media folder) holds ``tmp/`` (uploads being received, then moved in by
    :meth:`promote`) and ``uploads/`` (tus uploads in progress) on every backend. Reading a
    missing object raises :class:`FileNotFoundError`; an unreachable store
    :class:`~field_api.errors.ServiceUnavailable`.
    """

    backend: str
    uploads: UploadArea  # resumable uploads in progress (field_api.common.uploads)

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self.tmp_dir = staging / "tmp"
        self.uploads_dir = staging / "uploads"

    def temp_path(self) -> Path:
        """A fresh temporary file name in the staging folder (its owner in the name)."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.tmp_dir / temp_name()

    # -- the backend's primitives

    @abstractmethod
    def size(self, sha256: str) -> int | None:
        """The stored size of this content; None when it is not stored."""

    @abstractmethod
    def promote(self, temp_path: Path, sha256: str) -> StoredBlob:
        """Put a complete temporary file under its content address (removing the temporary
        file); when the content is already stored, only remove the temporary file."""

    @abstractmethod
    def remove(self, sha256: str) -> None:
        """Delete stored content (undo a write whose transaction rolled back); no error when
        it is not there."""

    @abstractmethod
    def open(self, sha256: str) -> AbstractContextManager[BinaryIO]:
        """The stored bytes as a file object read from the start (``read(n)``)."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every stored object whose key starts with ``prefix``, with size and time."""

    def local_file(self, sha256: str) -> Path | None:
        """The stored file itself when it lies on this host's disk (local backend)."""
        return None

    # -- built on them

    def exists(self, sha256: str) -> bool:
        """Whether this content is stored."""
        return self.size(sha256) is not None

    def new_temp(self, *, max_bytes: int | None = None) -> TempFile:
        """A temporary file in the staging folder, hashed as it is written."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return TempFile(self.tmp_dir / temp_name(), max_bytes=max_bytes)

    def put_bytes(self, data: bytes) -> StoredBlob:
        """Store small content (thumbnails, signatures, contract PDFs) the same way."""
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

    def chunks(self, sha256: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The stored bytes in chunks of at most ``chunk_bytes`` (a download's body)."""
        with self.open(sha256) as fh:
            while chunk := fh.read(chunk_bytes):
                yield chunk

    def read_bytes(self, sha256: str) -> bytes:
        """The stored bytes whole (small files only: signatures, contract PDFs)."""
        with self.open(sha256) as fh:
            return fh.read()

    def read_verified(self, sha256: str) -> bytes:
        """The stored bytes, checked against their digest (a damaged file is an error, not data).

        Raises:
            FileNotFoundError: the content is not stored.
            OSError: the stored bytes do not match the digest.
        """
        data = self.read_bytes(sha256)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise OSError(f"stored file {sha256} does not match its digest")
        return data

    def head(self, sha256: str, n: int = SNIFF_BYTES) -> bytes:
        """The first ``n`` bytes (to sniff the type)."""
        with self.open(sha256) as fh:
            return fh.read(n)

    @contextlib.contextmanager
    def local_copy(self, sha256: str) -> Iterator[Path]:
        """A file on this host's disk holding the content, for as long as the block runs: the
        stored file itself, or a temporary download removed afterwards."""
        path = self.local_file(sha256)
        if path is not None:
            if not path.is_file():
                raise FileNotFoundError(f"stored file {sha256} is missing")
            yield path
            return
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        target = self.tmp_dir / temp_name()
        try:
            with self.open(sha256) as src, target.open("xb") as dst:
                shutil.copyfileobj(src, dst, CHUNK_BYTES)
            yield target
        finally:
            target.unlink(missing_ok=True)

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


class LocalStore(ObjectStore):
    """A folder of immutable files named by their sha256 (the media folder)."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.root = root
        self.uploads = LocalUploads(self.uploads_dir)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path_of(self, sha256: str) -> Path:
        """The path of stored content (refuses anything that is not a sha256 hex digest)."""
        return self.root / key_of(sha256)

    def local_file(self, sha256: str) -> Path:
        return self.path_of(sha256)

    def size(self, sha256: str) -> int | None:
        try:
            path = self.path_of(sha256)
            return path.stat().st_size if path.is_file() else None
        except FileNotFoundError:
            return None

    def promote(self, temp_path: Path, sha256: str) -> StoredBlob:
        """Atomically rename a complete temporary file to its content address."""
        target = self.path_of(sha256)
        size = temp_path.stat().st_size
        if target.is_file():
            temp_path.unlink(missing_ok=True)
            return StoredBlob(sha256, size, target, created=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp_path, target)
        _fsync_dir(target.parent)
        return StoredBlob(sha256, size, target, created=True)

    def remove(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)

    def open(self, sha256: str) -> AbstractContextManager[BinaryIO]:
        return self.path_of(sha256).open("rb")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or folder.name in STAGING_DIRS:
                continue
            for path in sorted(folder.rglob("*")):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix) and path.is_file():
                    st = path.stat()
                    yield ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))


class S3Store(ObjectStore):
    """Content in an S3-compatible bucket (boto3), keys ``<prefix><sha256[:2]>/<sha256>``.

    Uploads go through boto3's transfer manager (multipart above 8 MiB); reads stream the
    object's body. Checksums are only sent where S3 requires them (servers other than AWS do not
    all accept the newer trailing checksums). The secret key is only handed to boto3: it is in
    no repr, log line or error of this class.
    """

    backend = "s3"

    def __init__(self, cfg: StorageSettings, staging: Path, *, client: Any = None) -> None:
        super().__init__(staging)
        if cfg.missing():
            raise ValueError("the s3 storage backend needs " + ", ".join(cfg.missing()))
        assert cfg.bucket is not None and cfg.secret_access_key is not None
        self.bucket = cfg.bucket
        self.prefix = cfg.prefix
        self.endpoint_url = cfg.endpoint_url
        self.client = client if client is not None else _s3_client(cfg)
        self.uploads = S3Uploads(self.client, self.bucket, f"{self.prefix}uploads/", self.temp_path)

    def __repr__(self) -> str:
        where = f"endpoint={self.endpoint_url!r}, bucket={self.bucket!r}"
        return f"S3Store({where}, prefix={self.prefix!r})"

    def object_key(self, sha256: str) -> str:
        return self.prefix + key_of(sha256)

    def size(self, sha256: str) -> int | None:
        key = self.object_key(sha256)
        with s3_errors(key):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                if is_not_found(exc):
                    return None
                raise
        return int(head["ContentLength"])

    def promote(self, temp_path: Path, sha256: str) -> StoredBlob:
        size = temp_path.stat().st_size
        try:
            if self.exists(sha256):
                return StoredBlob(sha256, size, None, created=False)
            key = self.object_key(sha256)
            with s3_errors(key):
                self.client.upload_file(str(temp_path), self.bucket, key)
            return StoredBlob(sha256, size, None, created=True)
        finally:
            temp_path.unlink(missing_ok=True)

    def remove(self, sha256: str) -> None:
        key = self.object_key(sha256)
        with s3_errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    @contextlib.contextmanager
    def open(self, sha256: str) -> Iterator[BinaryIO]:
        key = self.object_key(sha256)
        with s3_errors(key):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            except Exception as exc:
                if is_not_found(exc):
                    raise FileNotFoundError(f"stored object {key} is missing") from None
                raise
        try:
            yield body
        finally:
            body.close()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        with s3_errors(self.prefix + prefix):
            for page in pages:
                for obj in page.get("Contents", []):
                    key = str(obj["Key"])[len(self.prefix) :]
                    if key.split("/", 1)[0] in STAGING_DIRS:
                        continue  # uploads in progress are not content
                    modified = obj["LastModified"].astimezone(UTC)
                    yield ObjectInfo(key, int(obj["Size"]), modified)


@functools.lru_cache(maxsize=1)
def _boto_session() -> Any:
    """One boto3 session per process: it only caches the loaded service models (a client
    costs 3 ms from it instead of 140 ms from a new one); credentials go to each client."""
    import boto3

    return boto3.session.Session()


_CLIENT_LOCK = threading.Lock()  # creating clients from one session is not thread-safe


def _s3_client(cfg: StorageSettings) -> Any:
    from botocore.config import Config

    assert cfg.secret_access_key is not None
    config = Config(
        region_name=cfg.region,
        signature_version="s3v4",
        s3={"addressing_style": "path" if cfg.path_style else "virtual"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    with _CLIENT_LOCK:
        return _boto_session().client(
            "s3",
            endpoint_url=cfg.endpoint_url,
            aws_access_key_id=cfg.access_key_id,
            aws_secret_access_key=cfg.secret_access_key.get_secret_value(),
            config=config,
        )


@dataclass
class MigrationReport:
    """What :func:`migrate` did: objects copied, found in the target already, and refused
    (their key and why: a damaged source, a copy that does not hash to its key)."""

    copied: int = 0
    present: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def _sha_of_key(key: str) -> str | None:
    sha = key.rsplit("/", 1)[-1]
    return sha if len(sha) == 64 and set(sha) <= _HEX and key == key_of(sha) else None


def _hash_of(store: ObjectStore, sha256: str) -> str:
    digest = hashlib.sha256()
    for chunk in store.chunks(sha256):
        digest.update(chunk)
    return digest.hexdigest()


def migrate(source: ObjectStore, target: ObjectStore) -> MigrationReport:
    """Copy every stored object of ``source`` into ``target`` (``fieldops storage migrate``).

    Resumable: an object the target holds already with the same size is not copied again (a
    run cut short is started again). Verified: each source object is hashed while it is copied
    (a damaged file is refused, not copied), and every object is read back from the target and
    hashed; one that does not hash to its key is reported and removed (a new run copies it
    again).
    """
    report = MigrationReport()
    for info in source.list():
        sha = _sha_of_key(info.key)
        if sha is None:
            report.failed.append((info.key, "not a content key"))
            continue
        present = target.size(sha) == info.size_bytes
        if not present and not _copy(source, target, sha):
            report.failed.append((info.key, "the source does not hash to its key"))
        elif _hash_of(target, sha) != sha:
            target.remove(sha)
            report.failed.append((info.key, "the copy does not hash to its key"))
        elif present:
            report.present += 1
        else:
            report.copied += 1
    return report


def _copy(source: ObjectStore, target: ObjectStore, sha256: str) -> bool:
    """Copy one object through a temporary file hashed as written; False (nothing written)
    when the source's bytes do not hash to their key."""
    temp = target.new_temp()
    try:
        for chunk in source.chunks(sha256):
            temp.write(chunk)
        temp.finish()
        if temp.sha256 != sha256:
            return False
        target.promote(temp.path, sha256)
        return True
    finally:
        temp.discard()


def build_store(cfg: StorageSettings, media_dir: Path) -> ObjectStore:
    """A new store of the configured backend (``media_dir``: the local folder, or the staging
    folder of an s3 store)."""
    if cfg.backend == "s3":
        return S3Store(cfg, media_dir)
    return LocalStore(media_dir)


def store_of(settings: Settings) -> ObjectStore:
    """The store of these settings, built once per value (one boto3 client per process)."""
    cfg = settings.storage
    secret = cfg.secret_access_key.get_secret_value() if cfg.secret_access_key else None
    key = (
        "storage", settings.media_dir, cfg.backend, cfg.endpoint_url, cfg.bucket, cfg.region,
        cfg.access_key_id, secret, cfg.path_style, cfg.prefix,
    )
    store: ObjectStore = settings.built(key, lambda: build_store(cfg, settings.media_dir))
    return store


# The local backend's older name (callers that always mean the media folder on disk).
MediaStore = LocalStore


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


def remove_on_rollback(session: Session, store: ObjectStore, blob: StoredBlob) -> None:
    """Delete ``blob`` again if it was created by this call and the session's outermost
    transaction rolls back (a failed upload or signing leaves no file behind).

    ``after_soft_rollback`` fires even when no SQL ran yet (``after_rollback`` would not);
    savepoint rollbacks inside the transaction leave the files alone; a commit keeps them. The
    session's pending files are one list in ``session.info``, with one pair of listeners.
    """
    if not blob.created:
        return
    pending: list[tuple[ObjectStore, str]] | None = session.info.get(_CREATED_BLOBS)
    if pending is None:
        pending = []
        session.info[_CREATED_BLOBS] = pending
        event.listen(session, "after_soft_rollback", _undo_created)
        event.listen(session, "after_commit", _keep_created)
    pending.append((store, blob.sha256))


def _undo_created(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is not None or previous.nested:
        return
    pending: list[tuple[ObjectStore, str]] = session.info.get(_CREATED_BLOBS, [])
    for store, sha256 in pending:
        store.remove(sha256)
    pending.clear()


def _keep_created(session: Session) -> None:
    session.info.get(_CREATED_BLOBS, []).clear()
