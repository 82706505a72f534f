from __future__ import annotations

import pytest

from jupyter_gitsync import filters


@pytest.mark.parametrize(
    "path",
    [
        ".git",
        ".git/index",
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


def test_ignore_rules_are_one_per_line() -> None:
    assert filters.as_ignore_rules(["a", "b/"]) == "a\nb/\n"


def test_size_limit() -> None:
    assert filters.too_large(51, 50)
    assert not filters.too_large(50, 50)
    assert not filters.too_large(10**12, 0)  # 0 switches the limit off
