"""Blobs written as packs (`packs.BlobPack`): git itself reads and verifies what is written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pygit2
import pytest

from jupyter_gitsync import packs
from jupyter_gitsync.packs import BlobPack, blob_id


def _repository(tmp_path: Path) -> pygit2.Repository:
    subprocess.run(["git", "init", "-q", str(tmp_path / "r")], check=True)
    return pygit2.Repository(str(tmp_path / "r"))


def _verify(repo: pygit2.Repository) -> None:
    """git's own checks of every pack and of the object store."""
    for idx in sorted((Path(repo.path) / "objects" / "pack").glob("*.idx")):
        subprocess.run(["git", "verify-pack", str(idx)], check=True, capture_output=True)
    fsck = subprocess.run(
        ["git", "--git-dir", repo.path, "fsck", "--strict", "--no-dangling"],
        capture_output=True,
        text=True,
    )
    assert fsck.returncode == 0, fsck.stderr


def test_blobs_written_as_packs_read_back_as_git_stores_them(tmp_path: Path) -> None:
    """Small, empty, large (several record header bytes, a read of more than one window)
    and duplicate blobs, cut into several packs: each reads back byte for byte under the id
    `git hash-object` gives it, every pack passes `git verify-pack` and `git fsck --strict`,
    and none is written as a loose object."""
    repo = _repository(tmp_path)
    pack = BlobPack(Path(repo.path) / "objects" / "pack", flush_bytes=64 * 1024)
    blobs = [b"", b"a", b"x" * 15, b"x" * 16, os.urandom(3 * 1024 * 1024)]
    blobs += [f"line {i}\n".encode() * i for i in range(300)]
    written: dict[bytes, bytes] = {}
    try:
        for content in [*blobs, *blobs[:20]]:  # the same content again: stored once
            written[pack.add(content)] = content
            if pack.full:
                assert pack.flush() is not None
        pack.flush()
        assert pack.flush() is None  # nothing pending
    finally:
        pack.close()
    packs = list((Path(repo.path) / "objects" / "pack").glob("pack-*.idx"))
    assert len(packs) > 2
    assert not [p for p in (Path(repo.path) / "objects").glob("??/*")]  # no loose object
    assert not list((Path(repo.path) / "objects" / "pack").glob("tmp_*"))
    for oid, content in written.items():
        hashed = subprocess.run(
            ["git", "hash-object", "--stdin"], input=content, capture_output=True, check=True
        ).stdout.strip()
        assert hashed.decode() == oid.hex()
        assert repo[pygit2.Oid(raw=oid)].data == content
    _verify(repo)
    listed = subprocess.run(
        ["git", "--git-dir", repo.path, "cat-file", "--batch-all-objects", "--batch-check"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert len(listed) == len(written) == len(set(blobs))


def test_a_pack_whose_index_cannot_be_written_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up (or the process is stopped) between the pack and its index: the
    error comes out, the pack without an index is removed with the temporary files, and
    what an earlier flush wrote stays readable."""
    repo = _repository(tmp_path)
    pack_dir = Path(repo.path) / "objects" / "pack"
    pack = BlobPack(pack_dir)
    try:
        kept = pack.add(b"kept\n")
        pack.flush()
        before = sorted(pack_dir.iterdir())
        pack.add(b"lost\n")
        real = packs._index

        def full_disk(entries: list[tuple[bytes, int, int]], checksum: bytes) -> bytes:
            real(entries, checksum)
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(packs, "_index", full_disk)
        with pytest.raises(OSError, match="No space"):
            pack.flush()
    finally:
        pack.close()
    assert sorted(pack_dir.iterdir()) == before
    assert repo[pygit2.Oid(raw=kept)].data == b"kept\n"
    _verify(repo)


def test_blob_ids_are_gits(tmp_path: Path) -> None:
    for content in (b"", b"hello\n", bytes(range(256)) * 99):
        hashed = subprocess.run(
            ["git", "hash-object", "--stdin"], input=content, capture_output=True, check=True
        ).stdout.strip()
        assert blob_id(content).hex() == hashed.decode()
