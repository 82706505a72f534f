"""Cell-level notebook merge with nbdime."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jupyter_gitsync import notebooks


def notebook(*cells: tuple[str, int | None, list[dict[str, Any]]]) -> bytes:
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": count,
                    "id": "c" + hashlib.sha1(source.encode()).hexdigest()[:8],
                    "metadata": {},
                    "outputs": outputs,
                    "source": source,
                }
                for source, count, outputs in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    ).encode()


def stream(text: str) -> list[dict[str, Any]]:
    return [{"name": "stdout", "output_type": "stream", "text": text}]


def text(value: str | list[str]) -> str:
    """nbformat writes multi-line strings as lists of lines."""
    return value if isinstance(value, str) else "".join(value)


def sources(merged: bytes | None) -> list[str]:
    assert merged is not None
    return [text(cell["source"]) for cell in json.loads(merged)["cells"]]


def test_edits_in_different_cells_merge() -> None:
    base = notebook(("a = 1", None, []), ("b = 2", None, []), ("c = 3", None, []))
    ours = notebook(("a = 10", None, []), ("b = 2", None, []), ("c = 3", None, []))
    theirs = notebook(("a = 1", None, []), ("b = 2", None, []), ("c = 30", None, []))
    assert sources(notebooks.merge(base, ours, theirs)) == ["a = 10", "b = 2", "c = 30"]


def test_cells_added_in_different_places_merge() -> None:
    base = notebook(("a", None, []), ("b", None, []))
    ours = notebook(("first", None, []), ("a", None, []), ("b", None, []))
    theirs = notebook(("a", None, []), ("b", None, []), ("last", None, []))
    assert sources(notebooks.merge(base, ours, theirs)) == ["first", "a", "b", "last"]


def test_outputs_and_execution_counts_never_conflict_by_themselves() -> None:
    base = notebook(("print(1)", 1, stream("1\n")))
    ours = notebook(("print(1)", 7, stream("1 (ours)\n")))
    theirs = notebook(("print(1)", 9, stream("1 (theirs)\n")))
    merged = notebooks.merge(base, ours, theirs)
    assert merged is not None
    cell = json.loads(merged)["cells"][0]
    assert text(cell["outputs"][0]["text"]) == "1 (ours)\n"


def test_the_same_cell_edited_on_both_sides_is_a_conflict() -> None:
    base = notebook(("x = 1", None, []))
    ours = notebook(("x = 2", None, []))
    theirs = notebook(("x = 3", None, []))
    assert notebooks.merge(base, ours, theirs) is None


def test_not_a_notebook_is_a_plain_conflict() -> None:
    assert notebooks.merge(b"{", b"not json", b"{}") is None


def test_a_notebook_nbdime_cannot_merge_is_a_plain_conflict_not_a_crash() -> None:
    """An output without `output_type` (hand-edited, or written by a broken tool) on one side,
    and both sides changed the notebook: kept as a conflict, never an exception."""
    base = notebook(("a = 1", None, []), ("b = 2", None, []))
    ours = notebook(("a = 10", None, []), ("b = 2", None, []))
    theirs = notebook(("a = 1", None, []), ("b = 20", None, [{"name": "stdout", "text": "x"}]))
    assert notebooks.merge(base, ours, theirs) is None
