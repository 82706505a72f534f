from __future__ import annotations

import pytest

from jupyter_gitsync import origin


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://github.com/ada/thesis", "https://github.com/ada/thesis.git"),
        ("https://github.com/ada/thesis/", "https://github.com/ada/thesis.git"),
        ("https://github.com/ada/thesis.git", "https://github.com/ada/thesis.git"),
        ("https://www.github.com/ada/thesis/tree/main", "https://github.com/ada/thesis.git"),
        ("https://github.com/ada/thesis/tree/feature/x", "https://github.com/ada/thesis.git"),
        ("https://github.com/ada/the.sis", "https://github.com/ada/the.sis.git"),
        ("https://x-access-token:secret@github.com/ada/r.git", "https://github.com/ada/r.git"),
        ("http://127.0.0.1:8080/r.git", "http://127.0.0.1:8080/r.git"),
        ("git@github.com:ada/thesis.git", "git@github.com:ada/thesis.git"),
        ("ssh://git:hunter2@example.org/r.git", "ssh://git@example.org/r.git"),
        ("ssh://:hunter2@example.org/r.git", "ssh://example.org/r.git"),
        ("git+https://u:hunter2@example.org/r.git", "git+https://example.org/r.git"),
        ("git://example.org/r.git", "git://example.org/r.git"),
    ],
)
def test_normalise(given: str, expected: str) -> None:
    assert origin.normalise(given) == expected


def test_launch_ref() -> None:
    assert origin.launch_ref("https://github.com/ada/thesis/tree/feature/x") == "feature/x"
    assert origin.launch_ref("https://github.com/ada/thesis") is None


def test_detect_prefers_the_setting_then_origin_then_binder() -> None:
    binder = {"BINDER_REPO_URL": "https://github.com/ada/thesis"}
    assert origin.detect("http://127.0.0.1/r.git", "o", binder) == "http://127.0.0.1/r.git"
    assert origin.detect(None, "https://github.com/a/b", binder) == "https://github.com/a/b.git"
    assert origin.detect("", None, binder) == "https://github.com/ada/thesis.git"
    assert origin.detect(None, None, {}) is None
