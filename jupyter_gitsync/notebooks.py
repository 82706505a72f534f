"""Cell-level merge and diff of notebooks, with nbdime (the Jupyter project's own notebook
diff/merge).

A line-based merge of `.ipynb` JSON conflicts on outputs and execution counts and can break the
JSON; nbdime merges cells. Here cells added or edited in different places merge; outputs keep
this workspace's version and execution counts are cleared, so neither causes a conflict by
itself. Pure: bytes in, bytes (or None for a real conflict) out.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

log = logging.getLogger(__name__)

_ARGS = argparse.Namespace(
    merge_strategy="inline",  # record real conflicts, so we can tell them apart
    input_strategy=None,
    output_strategy="use-local",  # outputs never conflict: this workspace's win
    ignore_transients=True,  # execution counts and similar are cleared, not merged
    log_level="WARNING",
)


def merge(base: bytes | None, ours: bytes, theirs: bytes) -> bytes | None:
    """The merged notebook, or None when both sides changed the same cell's source (or the
    files are not notebooks nbformat can read)."""
    import nbformat
    from nbdime.merging.notebooks import merge_notebooks

    try:
        notebooks = [
            nbformat.reads(text.decode("utf-8"), as_version=4)
            for text in (base or _empty(ours), ours, theirs)
        ]
    except Exception as exc:  # not JSON, not a notebook: a plain conflict
        log.debug("not merging as notebooks: %s", exc)
        return None
    try:
        merged, decisions = merge_notebooks(*notebooks, args=_ARGS)
        if any(decision.conflict for decision in decisions):
            return None
        text: str = nbformat.writes(merged)
    except Exception as exc:  # nbdime or nbformat choked on one side (e.g. a malformed output)
        log.warning("gitsync: could not merge a notebook cell by cell: %r", exc)
        return None  # a plain conflict: this workspace's version is kept, theirs rescued
    return text.encode("utf-8") + (b"\n" if not text.endswith("\n") else b"")


def _empty(like: bytes) -> bytes:
    """A notebook with no cells, standing in for a missing base (both sides added the file)."""
    import nbformat

    notebook = nbformat.reads(like.decode("utf-8"), as_version=4)
    notebook.cells = []
    return str(nbformat.writes(notebook)).encode("utf-8")


def diff(base: bytes, remote: bytes) -> tuple[Any, Any] | None:
    """nbdime's cell-level diff of two notebooks (an empty side counts as a notebook without
    cells): the base notebook and the diff, as nbdime's /api/diff answers them; None when a
    side is not a notebook nbformat can read."""
    import nbformat
    from nbdime import diff_notebooks

    read = []
    for side in (base, remote):
        try:
            read.append(
                nbformat.reads(side.decode("utf-8"), as_version=4)
                if side
                else nbformat.v4.new_notebook()
            )
        except Exception as exc:  # not JSON, not a notebook: compared as text
            log.debug("not comparing as notebooks: %s", exc)
            return None
    try:
        return read[0], diff_notebooks(read[0], read[1])
    except Exception as exc:  # nbdime choked on one side (e.g. a malformed output)
        log.warning("gitsync: could not compare a notebook cell by cell: %r", exc)
        return None
