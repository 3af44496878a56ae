"""The content-addressed file store: each content stored once, read back checked, taken back when
its transaction rolls back; temporary files carry their owner, so a crash's leftovers are swept."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from field_api.common import owners
from field_api.common.storage import MediaStore, remove_on_rollback, temp_name, temp_owner

DAY_S = 24 * 3600


def _aged(path: Path, seconds: float) -> Path:
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def _file(store: MediaStore, name: str) -> Path:
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    path = store.tmp_dir / name
    path.write_bytes(b"half an upload")
    return path


def test_temp_names_carry_their_owner() -> None:
    assert temp_owner(temp_name()) == owners.owner_id()
    assert temp_owner(temp_name("my-host.lan/12/3456")) == "my-host.lan/12/3456"  # dashes
    assert temp_owner(temp_name(owners.owner_id("tagged"))) == owners.owner_id()
    assert temp_owner("0123456789abcdef0123456789abcdef.part") is None  # the old random names
    assert temp_owner("host-12-34-nothex!.part") is None
    assert temp_owner("host-x-34-abcd.part") is None


def test_the_store_names_its_temp_files_after_this_process(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    temp = store.new_temp()
    try:
        assert temp_owner(temp.path.name) == owners.owner_id()
    finally:
        temp.discard()


def test_sweep_removes_dead_local_processes_files_at_once(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    dead = _file(store, temp_name(f"{owners.host()}/999999/1"))
    live = store.new_temp()
    live.write(b"still arriving")
    parent = owners.owner_of_pid(os.getppid())
    assert parent is not None
    other_live = _aged(_file(store, temp_name(parent)), 2 * DAY_S)  # a slow live upload
    try:
        result = store.sweep_temp()
        assert (result.dead_owner, result.aged) == (1, 0)
        assert not dead.exists()
        assert live.path.exists() and other_live.exists()
    finally:
        live.discard()


def test_other_hosts_and_foreign_files_go_only_by_age(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    remote_fresh = _file(store, temp_name("other-host/999999/1"))
    remote_old = _aged(_file(store, temp_name("other-host/999998/1")), DAY_S + 60)
    foreign_fresh = _file(store, "0123456789abcdef0123456789abcdef.part")
    foreign_old = _aged(_file(store, "fedcba9876543210fedcba9876543210.part"), DAY_S + 60)
    result = store.sweep_temp()
    assert (result.dead_owner, result.aged) == (0, 2)
    assert remote_fresh.exists() and foreign_fresh.exists()
    assert not remote_old.exists() and not foreign_old.exists()
    assert store.sweep_temp(older_than_s=0).aged == 2


def test_sweep_of_a_store_without_temp_folder(tmp_path: Path) -> None:
    assert MediaStore(tmp_path / "nothing").sweep_temp().removed == 0


def test_a_file_is_stored_once_under_its_digest_and_the_source_is_left(tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    source.write_bytes(b"x" * 3_000_000)  # several read chunks
    store = MediaStore(tmp_path / "media")
    first = store.put_file(source)
    again = store.put_file(source)
    assert first.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert first.created and not again.created
    assert first.size_bytes == 3_000_000
    assert store.path_of(first.sha256).read_bytes() == source.read_bytes()
    assert source.is_file()
    assert list(store.tmp_dir.iterdir()) == []


def test_read_verified_refuses_a_damaged_file(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    blob = store.put_bytes(b"a signed contract")
    assert store.read_verified(blob.sha256) == b"a signed contract"
    blob.path.write_bytes(b"a signed contrac7")
    with pytest.raises(OSError, match="does not match its digest"):
        store.read_verified(blob.sha256)


def test_a_new_file_is_removed_when_the_transaction_rolls_back(
    session: Session, tmp_path: Path
) -> None:
    store = MediaStore(tmp_path)
    kept_before = store.put_bytes(b"stored by an earlier request")
    session.begin()  # the request's transaction, before it has run any SQL
    new = store.put_bytes(b"written in this transaction")
    again = store.put_bytes(b"stored by an earlier request")
    remove_on_rollback(session, store, new)
    remove_on_rollback(session, store, again)  # not created here: never removed
    session.rollback()
    assert not store.exists(new.sha256)
    assert store.exists(kept_before.sha256)


def test_a_committed_file_stays_after_a_later_rollback(session: Session, tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    session.begin()
    blob = store.put_bytes(b"signed and committed")
    remove_on_rollback(session, store, blob)
    session.commit()
    session.rollback()
    assert store.exists(blob.sha256)


def test_a_savepoint_rollback_leaves_the_file_to_the_outer_transaction(
    session: Session, tmp_path: Path
) -> None:
    store = MediaStore(tmp_path)
    blob = store.put_bytes(b"written before the savepoint")
    remove_on_rollback(session, store, blob)
    savepoint = session.begin_nested()
    savepoint.rollback()
    assert store.exists(blob.sha256)
    session.rollback()
    assert not store.exists(blob.sha256)
