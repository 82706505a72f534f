from __future__ import annotations

import secrets
from fnmatch import fnmatchcase

import pytest

from jupyter_gitsync import filters


@pytest.mark.parametrize(
    "path",
    [
        ".git",
        ".git/index",
        "nested-clone/.git/HEAD",
        ".ipynb_checkpoints/a-checkpoint.ipynb",
        "sub/.ipynb_checkpoints/a-checkpoint.ipynb",
        "pkg/__pycache__/m.cpython-311.pyc",
        "web/node_modules/x/index.js",
        ".DS_Store",
        "data/.DS_Store",
    ],
)
def test_default_excludes_match_anywhere(path: str) -> None:
    assert filters.is_excluded(path, filters.DEFAULT_EXCLUDES)


@pytest.mark.parametrize(
    "path", ["analysis.ipynb", "data/x.csv", ".gitignore", "notes/.cachefile", "my.git/x"]
)
def test_ordinary_paths_are_synced(path: str) -> None:
    assert not filters.is_excluded(path, filters.DEFAULT_EXCLUDES)


def test_globs_and_paths_with_slashes() -> None:
    assert filters.is_excluded("out/run.log", ["*.log"])
    assert filters.is_excluded("build/tmp/x", ["build/tmp/*"])
    assert not filters.is_excluded("src/build/tmp/x", ["build/tmp/*"])


def test_compiled_matching_agrees_with_fnmatch_component_by_component() -> None:
    """The patterns are compiled once for speed; what they match is still `fnmatchcase` of
    each component (or of the leading components, for a pattern with a slash)."""
    patterns = ["*.log", "tmp?", "[ab]*.csv", "cache/", "[!x]y", "build/tmp/*", "/docs/_build/"]
    paths = ["x.log", "a/b/run.log", "tmp1/x", "x/tmpdir", "a.csv", "sub/b2.csv", "c.csv",
             "cache", "x/cache/y", "ay", "xy", "build/tmp/x", "src/build/tmp/x",
             "docs/_build/html/i.html", "a/docs/_build", "[ab].csv", "tmp?"]  # fmt: skip
    for path in paths:
        parts = path.split("/")
        expected = any(
            fnmatchcase("/".join(parts[: p.strip("/").count("/") + 1]), p.strip("/"))
            if "/" in p.strip("/")
            else any(fnmatchcase(part, p.rstrip("/")) for part in parts)
            for p in patterns
        )
        assert filters.is_excluded(path, patterns) == expected, path
        assert filters.is_excluded(path, iter(patterns)) == expected, path  # any iterable


def test_ignore_rules_are_one_per_line() -> None:
    assert filters.as_ignore_rules(["a", "b/"]) == "a\nb/\n"


def test_size_limit() -> None:
    assert filters.too_large(51, 50)
    assert not filters.too_large(50, 50)
    assert not filters.too_large(10**12, 0)  # 0 switches the limit off


def test_credentials_files_by_name() -> None:
    for path in (".env", "conf/.env.local", "keys/server.pem", "home/id_rsa", ".netrc",
                 ".git-credentials"):  # fmt: skip
        assert filters.secret_file_reason(path) == "looks like a credentials file", path
    for path in (".env.example", "environment.yml", "notes.md", "rsa.py"):
        assert filters.secret_file_reason(path) is None, path


def test_secret_shaped_content() -> None:
    github = b'token = "ghp_' + secrets.token_hex(18).encode() + b'"'
    fine_grained = b"github_pat_" + secrets.token_hex(32).encode()
    aws = b"key=AKIA" + secrets.token_hex(8).upper().encode()
    google = b"AIza" + secrets.token_urlsafe(26)[:35].encode()
    slack = b"xoxb-" + secrets.token_hex(12).encode()
    key = b"-----BEGIN RSA PRIVATE KEY-----\nMIIE..."
    assert filters.secret_content_reason(github) == "contains what looks like a GitHub token"
    assert filters.secret_content_reason(fine_grained) == "contains what looks like a GitHub token"
    assert filters.secret_content_reason(aws) == "contains what looks like an AWS access key"
    assert filters.secret_content_reason(google) == "contains what looks like a Google API key"
    assert filters.secret_content_reason(slack) == "contains what looks like a Slack token"
    assert filters.secret_content_reason(key) == "contains what looks like a private key"
    assert filters.secret_content_reason(b"ghp_short and AKIA lowercase") is None


def test_credentials_file_names_match_as_fnmatch_reads_the_patterns() -> None:
    """The credential-file patterns are one compiled expression (asked of every file); each
    name matches exactly where `fnmatchcase` of some pattern does."""
    names = [
        ".env", ".env.local", ".envrc", "env", "a.pem", ".pem", "pem", "x.key", "x.keys",
        "id_rsa", "id_rsa.pub", "my_id_rsa", "credentials.json", "credentials.json.bak",
        ".netrc", "x.netrc", ".git-credentials", "A.PEM", "cert.p12", "c.pfx", "key",
        ".env.example", "line\nid_rsa", "id_ed25519", ".pgpass",
    ]  # fmt: skip
    for name in names:
        expected = name not in (".env.example",) and any(
            fnmatchcase(name, p) for p in filters.SECRET_FILE_PATTERNS
        )
        assert (filters.secret_file_reason(f"d/{name}") is not None) is expected, name
