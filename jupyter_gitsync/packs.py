"""Many new blobs written as packs, not as one loose object each.

The first full snapshot of a large workspace stores tens of thousands of blobs. As loose objects
(what libgit2's `index.add` and `git add` write) each one costs a temporary file, a write, a
link and an unlink; in a pack they are appended to one file, and the pack is named and indexed
once. `BlobPack` hashes each blob as it is given, deflates it on a thread of its own (zlib lets
go of the GIL, so this overlaps the caller's reading of the next file), and keeps the packed
records in memory; `flush` writes them as a version 2 pack with its version 2 index (git's formats,
`gitformat-pack(5)`), each under a temporary name first and the index last, so a reader
(libgit2 looks for `pack-*.idx` when an object is not found) sees a complete pack or none.

No deltas: blobs are deflated whole, as loose objects are; the engine's packing later repacks
them with deltas (`SyncRepository.maintain`). Packs are cut at `flush_bytes`, far below the
2 GiB where the index would need its table of large offsets.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from tempfile import NamedTemporaryFile
from typing import IO

_BLOB = 3  # the object type in a pack record's header
_LEVEL = 1  # zlib's fastest, git's default for loose objects (`core.loosecompression`)
_IDX_MAGIC = b"\xfftOc"
_VERSION = 2
_MAX_OFFSET = 0x7FFFFFFF  # the index's 32-bit offsets; beyond, a table this module never needs
DEFAULT_FLUSH_BYTES = 16 * 1024 * 1024  # blob bytes taken before a pack is written
_BATCH_BYTES = 512 * 1024  # blob bytes handed to the deflating thread at a time
TEMPORARY_PREFIX = "tmp_pack_gitsync_"  # git's own are tmp_pack_XXXXXX: git gc prunes both


def blob_id(content: bytes) -> bytes:
    """The 20-byte object id git gives `content` as a blob."""
    digest = hashlib.sha1(b"blob %d\0" % len(content), usedforsecurity=False)
    digest.update(content)
    return digest.digest()


class BlobPack:
    """Blobs waiting to be written as a pack into `pack_dir` (`.git/objects/pack`)."""

    def __init__(self, pack_dir: Path, flush_bytes: int = DEFAULT_FLUSH_BYTES) -> None:
        self.pack_dir = pack_dir
        self.flush_bytes = flush_bytes
        self.pending_bytes = 0  # inflated, since the last flush: what `full` measures
        self._taken: set[bytes] = set()  # every object id taken, so none is stored twice
        self._batch: list[tuple[bytes, bytes]] = []  # (object id, content) not yet handed over
        self._batch_bytes = 0
        self._deflating: list[Future[list[tuple[bytes, bytes]]]] = []  # (id, record) by batch
        self._deflater = ThreadPoolExecutor(1, thread_name_prefix="gitsync-pack")

    def add(self, content: bytes) -> bytes:
        """Take `content` as a blob; returns its object id. The same content twice is kept once."""
        oid = blob_id(content)
        if oid not in self._taken:
            self._taken.add(oid)
            self._batch.append((oid, content))
            self._batch_bytes += len(content)
            self.pending_bytes += len(content)
            if self._batch_bytes >= _BATCH_BYTES:
                self._hand_over()
        return oid

    @property
    def full(self) -> bool:
        return self.pending_bytes >= self.flush_bytes

    def flush(self) -> Path | None:
        """Write what is pending as a pack and its index; returns the index's path (None when
        nothing was pending). Afterwards every object id `add` returned can be read."""
        self._hand_over()
        if not self._deflating:
            return None
        records = [record for batch in self._deflating for record in batch.result()]
        self._deflating = []
        self.pending_bytes = 0
        written: list[tuple[bytes, int, int]] = []
        checksum = b""

        def write_pack(handle: IO[bytes]) -> None:
            nonlocal checksum
            written[:], checksum = _write_pack(handle, records)

        pack = _write_temporary(self.pack_dir, write_pack)
        try:
            index = _write_temporary(
                self.pack_dir, lambda handle: handle.write(_index(written, checksum))
            )
        except BaseException:
            pack.unlink(missing_ok=True)
            raise
        return _publish(self.pack_dir / f"pack-{checksum.hex()}", pack, index)

    def close(self) -> None:
        """Drop what is pending and stop the deflating thread."""
        self._deflater.shutdown(cancel_futures=True)
        self._batch = []
        self._deflating = []
        self.pending_bytes = 0

    def _hand_over(self) -> None:
        """Give the batch to the deflating thread (a batch at a time: a task per blob would
        cost more than deflating a small one)."""
        if self._batch:
            self._deflating.append(self._deflater.submit(_records, self._batch))
            self._batch = []
            self._batch_bytes = 0


def _records(blobs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Each blob's record in a pack: its header, then its bytes deflated."""
    return [
        (oid, _record_header(_BLOB, len(content)) + zlib.compress(content, _LEVEL))
        for oid, content in blobs
    ]


def _record_header(kind: int, size_bytes: int) -> bytes:
    """A pack record's header: the type and the inflated size, 4 bits then 7 bits a byte,
    low bits first, the high bit saying another byte follows."""
    byte = (kind << 4) | (size_bytes & 0x0F)
    size_bytes >>= 4
    out = bytearray()
    while size_bytes:
        out.append(byte | 0x80)
        byte = size_bytes & 0x7F
        size_bytes >>= 7
    out.append(byte)
    return bytes(out)


def _write_pack(
    handle: IO[bytes], records: list[tuple[bytes, bytes]]
) -> tuple[list[tuple[bytes, int, int]], bytes]:
    """Write the pack of `records`; returns its entries (object id, CRC-32 of the record,
    offset) and its checksum (the SHA-1 of everything before it, also its trailer)."""
    digest = hashlib.sha1(usedforsecurity=False)
    offset = 0
    entries = []

    def write(part: bytes) -> None:
        nonlocal offset
        handle.write(part)
        digest.update(part)
        offset += len(part)

    write(b"PACK" + struct.pack(">II", _VERSION, len(records)))
    for oid, record in records:
        if offset > _MAX_OFFSET:
            raise ValueError("a pack this large needs 64-bit offsets in its index")
        entries.append((oid, zlib.crc32(record), offset))
        write(record)
    checksum = digest.digest()
    handle.write(checksum)
    return entries, checksum


def _index(entries: list[tuple[bytes, int, int]], pack_checksum: bytes) -> bytes:
    """The version 2 index of a pack: a fan-out table of counts by the first byte of the
    object id, the sorted ids, their CRC-32s, their offsets, the pack's checksum, and the
    SHA-1 of all that."""
    entries = sorted(entries)
    counts = [0] * 256
    for oid, _, _ in entries:
        counts[oid[0]] += 1
    fanout = []
    total = 0
    for count in counts:
        total += count
        fanout.append(total)
    n = len(entries)
    body = b"".join(
        [
            _IDX_MAGIC,
            struct.pack(">I", _VERSION),
            struct.pack(">256I", *fanout),
            b"".join(oid for oid, _, _ in entries),
            struct.pack(f">{n}I", *(crc for _, crc, _ in entries)),
            struct.pack(f">{n}I", *(offset for _, _, offset in entries)),
            pack_checksum,
        ]
    )
    return body + hashlib.sha1(body, usedforsecurity=False).digest()


def remove_leftovers(pack_dir: Path) -> list[Path]:
    """Remove the temporary files a stopped process of ours left in `pack_dir` (killed while
    it wrote a pack); returns them. Only for a caller that holds the engine's lock: then no
    process of ours is writing them, and git's own temporary files have another prefix."""
    removed = []
    for leftover in pack_dir.glob(f"{TEMPORARY_PREFIX}*"):
        leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def _write_temporary(folder: Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Write a file under a temporary name in `folder`, read-only as git leaves pack files;
    nothing is left behind when writing fails."""
    with NamedTemporaryFile(dir=folder, prefix=TEMPORARY_PREFIX, delete=False) as handle:
        temporary = Path(handle.name)
        try:
            write(handle)
        except BaseException:
            handle.close()
            temporary.unlink(missing_ok=True)
            raise
    try:
        os.chmod(temporary, 0o444)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _publish(stem: Path, pack: Path, index: Path) -> Path:
    """Give the written pack and index their names, the index last (git and libgit2 find a
    pack by its index), so that a name never holds half a file and a reader sees a complete
    pack or none; returns the index's path. The same pack already there (the same objects
    written again, say after a stopped snapshot) is kept as it is."""
    final_pack, final_index = stem.with_suffix(".pack"), stem.with_suffix(".idx")
    try:
        if final_index.exists():
            return final_index
        os.replace(pack, final_pack)
        try:
            os.replace(index, final_index)
        except BaseException:
            final_pack.unlink(missing_ok=True)  # no pack without its index
            raise
    finally:
        pack.unlink(missing_ok=True)
        index.unlink(missing_ok=True)
    return final_index
