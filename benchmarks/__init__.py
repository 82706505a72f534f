"""Benchmarks of jupyter-gitsync, side by side with git: `make bench` (`python -m benchmarks`).

Not tests: nothing here asserts a timing. Each figure (P1 … P10) measures our median and a
baseline's median in the same run on the same machine; `__main__` prints the table and writes
`bench-results/results.json`. See docs/benchmarks.md.
"""
