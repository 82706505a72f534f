"""libgit2 calls and options that pygit2 does not wrap, reached through the library pygit2 has
loaded.

The engine needs its *own* index file, so that snapshots never touch the user's `.git/index`,
while keeping libgit2's stat cache (unchanged files are not rehashed). `git_repository_set_index`
gives a Repository object that index. `git_ignore_add_rule` adds in-memory ignore rules, so the
default excludes apply to libgit2's scans without writing anything into the user's repository.
A checkout takes the sync index as its baseline (`baseline_index`), not the user's HEAD.
`git_config_add_file_ondisk` gives a Repository object settings of our own, in memory. A fetch
can leave `FETCH_HEAD` without entries (`update_fetchhead`). `git_merge_bases` gives every
merge base libgit2 finds, not only the one it prefers by commit date (`merge_bases`).
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

import pygit2
from pygit2 import ffi
from pygit2.callbacks import git_checkout_options, git_fetch_options
from pygit2.errors import check_error
from pygit2.ffi import C
from pygit2.utils import StrArray


@cache
def _lib() -> ctypes.CDLL:
    # The cffi extension links libgit2, so symbol lookup through its handle finds libgit2's
    # exports whether pygit2 bundles the library or uses the system one.
    lib = ctypes.CDLL(pygit2._libgit2.__file__)
    lib.git_repository_set_index.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.git_repository_set_index.restype = ctypes.c_int
    lib.git_ignore_add_rule.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.git_ignore_add_rule.restype = ctypes.c_int
    lib.git_merge_bases.argtypes = [
        ctypes.POINTER(_OidArray),
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
    ]
    lib.git_merge_bases.restype = ctypes.c_int
    lib.git_oidarray_dispose.argtypes = [ctypes.POINTER(_OidArray)]
    lib.git_oidarray_dispose.restype = None
    return lib


class _OidArray(ctypes.Structure):
    """libgit2's `git_oidarray`: `count` object ids of `ffi.sizeof("git_oid")` bytes each."""

    _fields_ = [("ids", ctypes.c_void_p), ("count", ctypes.c_size_t)]


_GIT_ENOTFOUND = -3


def _address(pointer: object) -> int:
    return int(ffi.cast("uintptr_t", pointer))


def use_index(repo: pygit2.Repository, index: pygit2.Index) -> None:
    """Make `index` the index of this Repository object (only this object; nothing on disk)."""
    if _lib().git_repository_set_index(_address(repo._repo), _address(index._index)) != 0:
        raise OSError("libgit2 could not attach the sync index")


def merge_bases(repo: pygit2.Repository, one: pygit2.Oid, two: pygit2.Oid) -> list[pygit2.Oid]:
    """Every merge base of two commits libgit2 finds in its view of the history, the one
    `Repository.merge_base` would return first ([] when they have none)."""
    found = _OidArray()
    error = _lib().git_merge_bases(ctypes.byref(found), _address(repo._repo), one.raw, two.raw)
    if error == _GIT_ENOTFOUND:
        return []
    if error != 0:
        raise OSError(f"libgit2 could not find the merge bases (error {error})")
    try:
        size = ffi.sizeof("git_oid")
        data = ctypes.string_at(found.ids, size * found.count) if found.count else b""
        return [pygit2.Oid(raw=data[i * size : i * size + 20]) for i in range(found.count)]
    finally:
        _lib().git_oidarray_dispose(ctypes.byref(found))


def add_ignore_rules(repo: pygit2.Repository, rules: str) -> None:
    """Add gitignore-syntax rules to this Repository object's in-memory ignore list."""
    if _lib().git_ignore_add_rule(_address(repo._repo), rules.encode()) != 0:
        raise OSError("libgit2 could not add ignore rules")


def checkout_tree_from_index(
    repo: pygit2.Repository,
    tree: pygit2.Tree,
    baseline: pygit2.Index,
    strategy: int,
    callbacks: pygit2.CheckoutCallbacks | None = None,
    disable_filters: bool = False,
) -> None:
    """`Repository.checkout_tree`, with `baseline` as what the workspace is expected to hold.

    libgit2 otherwise compares the workspace with HEAD; here the expected content is the last
    snapshot, which is what the sync index records. `disable_filters` (only where no filter can
    apply): files are written as the blobs hold them, without looking up attributes for each.
    """
    with git_checkout_options(callbacks=callbacks, strategy=strategy) as payload:
        payload.checkout_options.baseline_index = baseline._index
        payload.checkout_options.disable_filters = int(disable_filters)
        target = ffi.new("git_object **")
        ffi.buffer(target)[:] = tree._pointer[:]
        payload.check_error(C.git_checkout_tree(repo._repo, target[0], payload.checkout_options))


def add_config_file(repo: pygit2.Repository, path: str, level: int) -> None:
    """Add a config file at `level` to this Repository object's configuration (in memory: no
    config file of the user's is written). pygit2 refuses this for a repository's own config;
    libgit2 does not."""
    config = ffi.new("git_config **")
    check_error(C.git_repository_config(config, repo._repo))
    try:
        check_error(C.git_config_add_file_ondisk(config[0], path.encode(), level, repo._repo, 0))
    finally:
        C.git_config_free(config[0])


def fetch_without_fetch_head(
    remote: pygit2.Remote,
    refspecs: list[str],
    callbacks: pygit2.RemoteCallbacks,
    depth: int = 0,
) -> None:
    """`Remote.fetch` with libgit2's `update_fetchhead` off, which pygit2 does not expose: no
    entries are written to `.git/FETCH_HEAD` (libgit2 1.9 still empties it; see
    `transport.Transport.fetch`). `depth` as in `Remote.fetch` (libgit2 >= 1.7)."""
    with git_fetch_options(callbacks) as payload:
        options = payload.fetch_options
        options.update_fetchhead = 0
        options.depth = depth
        with StrArray(refspecs) as array:
            payload.check_error(C.git_remote_fetch(remote._remote, array.ptr, options, ffi.NULL))


IndexStat = tuple[int, int, int, int, int, int, int, int]
"""What an index entry records of a file (see `index_stat`): a plain tuple of ints, which the
garbage collector stops tracking, where an `os.stat_result` stays tracked. A snapshot keeps one
per file until its pack is written: 50k tracked objects made Python's full collection run in
the middle of a first snapshot, holding the GIL (the server's event loop) for 140 ms."""


def index_stat(st: os.stat_result, mode: int) -> IndexStat:
    """The fields of `st` an index entry records, and the entry's `mode`."""
    return (
        st.st_ctime_ns, st.st_mtime_ns, st.st_rdev, st.st_ino, st.st_uid, st.st_gid,
        st.st_size, mode,
    )  # fmt: skip


def add_index_entry(index: pygit2.Index, path: str, blob: bytes, recorded: IndexStat) -> None:
    """Add `path` to `index` as the blob `blob` (20 bytes, already stored) with the stat data
    `recorded` (`index_stat`), as libgit2's `git_index_add_bypath` records it, so the next scan
    does not reread the file. pygit2's `IndexEntry` carries no stat data."""
    ctime_ns, mtime_ns, rdev, ino, uid, gid, size, mode = recorded
    entry = ffi.new("git_index_entry *")
    entry.ctime.seconds = _int32(ctime_ns // 1_000_000_000)
    entry.ctime.nanoseconds = ctime_ns % 1_000_000_000
    entry.mtime.seconds = _int32(mtime_ns // 1_000_000_000)
    entry.mtime.nanoseconds = mtime_ns % 1_000_000_000
    entry.dev = rdev & _UINT32
    entry.ino = ino & _UINT32
    entry.mode = mode
    entry.uid = uid & _UINT32
    entry.gid = gid & _UINT32
    entry.file_size = size & _UINT32
    ffi.memmove(entry.id.id, blob, len(blob))
    encoded = ffi.new("char[]", os.fsencode(path))
    entry.path = encoded
    check_error(C.git_index_add(index._index, entry))


_UINT32 = 0xFFFFFFFF


def _int32(value: int) -> int:
    """`value` cut to a signed 32-bit number, as C's cast to `int32_t` does."""
    return (value + 0x80000000) % 0x100000000 - 0x80000000
