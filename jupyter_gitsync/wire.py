"""Reading commits from a remote without their trees: git's protocol v2 over smart HTTP,
`fetch` with `deepen 1` and `filter tree:0`, for the branch list (a date and a message per
branch tip, where a fetch through libgit2 would bring every tip's files too: libgit2 has no
partial fetch). Nothing is written to the repository.

Only what that needs: one GET for the capabilities, one POST for the pack, a pack reader for
commits (and deltas between them). A remote that does not offer protocol v2 with `filter`
raises `Unsupported`, and the caller fetches the tips through libgit2 instead. Like the
transport it never follows a redirect (the token goes to the remote's own origin only), uses
no proxy (as libgit2 here), and bounds what it reads.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pygit2

from .errors import AuthRequired, GitSyncError, RemoteNotFound, RemoteUnavailable
from .watch import Watch

MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # commits only: a few hundred bytes each
MAX_COMMIT_BYTES = 1024 * 1024
_CHUNK_BYTES = 64 * 1024
_USER_AGENT = "git/2.0 (jupyter-gitsync)"
_COMMIT, _OFS_DELTA, _REF_DELTA = 1, 6, 7


class Unsupported(Exception):
    """The remote does not serve protocol v2 fetches with filters (or is not over HTTP)."""


def read_commits(
    url: str,
    username: str,
    token: Callable[[], str | None],
    oids: Iterable[pygit2.Oid],
    watch: Watch,
    timeout_seconds: float,
) -> dict[pygit2.Oid, bytes]:
    """The raw contents of the commits `oids` (tips the remote advertised), checked against
    their ids. A commit the remote did not send, or sent too large, is left out."""
    wanted = sorted(set(oids), key=str)
    if not wanted:
        return {}
    if urlsplit(url).scheme not in ("http", "https"):
        raise Unsupported(url)
    client = _Client(url.rstrip("/"), username, token, watch, timeout_seconds)
    capabilities = client.capabilities()
    features = capabilities.get("fetch", "").split()
    if "shallow" not in features or "filter" not in features:
        raise Unsupported("the remote offers no filtered, shallow fetch")
    lines = ["command=fetch\n"]
    if "agent" in capabilities:
        lines.append("agent=jupyter-gitsync\n")
    body = b"".join(_pkt(line) for line in lines) + b"0001"
    arguments = ["no-progress\n", "ofs-delta\n", "deepen 1\n", "filter tree:0\n"]
    arguments += [f"want {oid}\n" for oid in wanted] + ["done\n"]
    body += b"".join(_pkt(line) for line in arguments) + b"0000"
    pack = _packfile(client.post(body))
    found = {}
    try:
        for kind, data in _objects(pack):
            if kind == _COMMIT:
                digest = hashlib.sha1(b"commit %d\0" % len(data) + data).digest()
                found[pygit2.Oid(raw=digest)] = data
    except (IndexError, KeyError, struct.error, zlib.error):
        raise Unsupported("a pack this reader cannot read") from None
    return {oid: found[oid] for oid in wanted if oid in found}


class _Client:
    def __init__(
        self,
        url: str,
        username: str,
        token: Callable[[], str | None],
        watch: Watch,
        timeout_seconds: float,
    ) -> None:
        self.url = url
        self._username = username
        self._token = token
        self._watch = watch
        self._timeout = timeout_seconds
        import urllib.request  # here, not at the top: `jupyter gitsync restore` starts faster

        class NoRedirects(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None  # urllib then raises HTTPError with the 3xx status

        # No proxy (as libgit2 here) and no redirects: the token stays with the remote.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirects)
        self._request_type = urllib.request.Request

    def capabilities(self) -> dict[str, str]:
        answer = self._request(f"{self.url}/info/refs?service=git-upload-pack", None)
        capabilities: dict[str, str] = {}
        lines = list(_pkt_lines(answer))
        if lines and lines[0] is not None and lines[0].startswith(b"# service="):
            lines = lines[2:]  # a server may still send the v0 preamble and a flush
        if not lines or lines[0] != b"version 2\n":
            raise Unsupported("the remote does not speak protocol v2")
        for line in lines[1:]:
            if line is None:
                break
            key, _, value = line.decode("utf-8", "replace").rstrip("\n").partition("=")
            capabilities[key] = value
        return capabilities

    def post(self, body: bytes) -> bytes:
        return self._request(f"{self.url}/git-upload-pack", body)

    def _request(self, url: str, body: bytes | None) -> bytes:
        headers = {"Git-Protocol": "version=2", "User-Agent": _USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/x-git-upload-pack-request"
            headers["Accept"] = "application/x-git-upload-pack-result"
        secret = self._token()
        if secret:
            credentials = base64.b64encode(f"{self._username}:{secret}".encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"
        import urllib.error

        request = self._request_type(url, data=body, headers=headers)
        self._watch.touch()
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return self._read(response)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc.code, secret is not None, body is not None) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteUnavailable(f"The remote could not be reached ({reason}).") from None

    def _read(self, response: Any) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = response.read(_CHUNK_BYTES)
            self._watch.touch()
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise Unsupported("the remote sent more than commits")
            parts.append(chunk)


def _http_error(status: int, sent_token: bool, is_fetch: bool) -> Exception:
    if 300 <= status < 400:
        return RemoteNotFound(
            "The remote sent the request on to another address; the token is only ever sent"
            " to the remote's own address. Set the remote to where the repository is."
        )
    if status == 401:
        if sent_token:
            return AuthRequired(f"The remote refused the token (HTTP {status}).")
        return AuthRequired("The remote needs a token; none is set.")
    if status == 429 or status >= 500:
        return RemoteUnavailable(f"The remote could not answer (HTTP {status}).")
    if status == 403:
        return AuthRequired(f"The remote refused access (HTTP {status}).")
    if status == 404 and not is_fetch:
        return RemoteNotFound(f"The remote URL does not lead to a git repository (HTTP {status}).")
    return Unsupported(f"HTTP {status}")  # e.g. a server that refuses v2 requests


# -- pkt-lines, side band and packs -----------------------------------------------------------


def _pkt(line: str) -> bytes:
    data = line.encode()
    return b"%04x" % (len(data) + 4) + data


def _pkt_lines(data: bytes) -> Iterator[bytes | None]:
    """The pkt-lines of `data`; None for a flush, delimiter or response-end packet."""
    pos = 0
    while pos + 4 <= len(data):
        try:
            length = int(data[pos : pos + 4], 16)
        except ValueError:
            raise Unsupported("not a pkt-line answer") from None
        if length < 4:
            pos += 4
            yield None
            continue
        if pos + length > len(data):
            raise Unsupported("a truncated pkt-line")
        yield data[pos + 4 : pos + length]
        pos += length


def _packfile(answer: bytes) -> bytes:
    """The pack from a v2 fetch answer: the side-band data of its `packfile` section."""
    section = None
    pack = []
    for line in _pkt_lines(answer):
        if line is None:
            continue
        if section != "packfile":
            if line.startswith(b"ERR "):
                raise GitSyncError(f"The remote refused: {line[4:200].decode('utf-8', 'replace')}")
            if line in (b"shallow-info\n", b"acknowledgments\n", b"wanted-refs\n", b"packfile\n"):
                section = line.decode().strip()
            continue
        band, payload = line[:1], line[1:]
        if band == b"\x01":
            pack.append(payload)
        elif band == b"\x03":
            raise RemoteUnavailable(
                f"The remote failed: {payload[:200].decode('utf-8', 'replace')}"
            )
    return b"".join(pack)


def _objects(pack: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, content) of each object of a pack, deltas resolved against objects earlier in
    it (a delta whose base is not there is skipped)."""
    if len(pack) < 12 or pack[:4] != b"PACK":
        return
    count = struct.unpack(">I", pack[8:12])[0]
    view = memoryview(pack)
    pos = 12
    by_offset: dict[int, tuple[int, bytes]] = {}
    by_id: dict[bytes, tuple[int, bytes]] = {}
    for _ in range(count):
        start = pos
        byte = pack[pos]
        kind, size, shift = (byte >> 4) & 7, byte & 15, 4
        pos += 1
        while byte & 0x80:
            byte = pack[pos]
            size |= (byte & 0x7F) << shift
            shift += 7
            pos += 1
        base: tuple[int, bytes] | None = None
        if kind == _OFS_DELTA:
            byte = pack[pos]
            offset = byte & 0x7F
            pos += 1
            while byte & 0x80:
                byte = pack[pos]
                offset = ((offset + 1) << 7) | (byte & 0x7F)
                pos += 1
            base = by_offset.get(start - offset)
        elif kind == _REF_DELTA:
            base = by_id.get(bytes(view[pos : pos + 20]))
            pos += 20
        inflater = zlib.decompressobj()
        data = inflater.decompress(view[pos:], MAX_COMMIT_BYTES + 1)
        if not inflater.eof:
            return  # too large, or a broken pack: stop reading
        pos = len(pack) - len(inflater.unused_data)
        if kind in (_OFS_DELTA, _REF_DELTA):
            if base is None:
                continue
            kind, data = base[0], _apply_delta(base[1], data)
        header = b"%s %d\0" % ({1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}[kind], len(data))
        by_offset[start] = by_id[hashlib.sha1(header + data).digest()] = (kind, data)
        yield kind, data


def _apply_delta(base: bytes, delta: bytes) -> bytes:
    """git's delta format: the sizes, then copy-from-base and insert instructions."""
    pos = 0
    for _ in range(2):  # source and target sizes (varints), not needed here
        while delta[pos] & 0x80:
            pos += 1
        pos += 1
    out = bytearray()
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op & 0x80:
            offset = size = 0
            for i in range(4):
                if op & (1 << i):
                    offset |= delta[pos] << (8 * i)
                    pos += 1
            for i in range(3):
                if op & (1 << (4 + i)):
                    size |= delta[pos] << (8 * i)
                    pos += 1
            out += base[offset : offset + (size or 0x10000)]
        elif op:
            out += delta[pos : pos + op]
            pos += op
        if len(out) > MAX_COMMIT_BYTES:
            break
    return bytes(out)
