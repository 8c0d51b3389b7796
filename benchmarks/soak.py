"""The long soak: 4 consoles × 1,000 mixed operations on SQLite and on PostgreSQL.

    python benchmarks/soak.py [--ops 1000]

Runs ``tests/core/test_concurrency_soak.py`` (the same test CI runs with 150 operations per
console) with ``MFA_TUI_TEST_SOAK_OPS`` set, and prints its figures for each database: wall time,
operations per second, each kind of operation, stale edits retried, enrollments superseded by
another console, audit rows (chain verified) and errors (always 0, or the test fails). PostgreSQL
comes from ``MFA_TUI_TEST_POSTGRES_URL`` as in the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="operations per console")
    arguments = parser.parse_args()
    os.environ["MFA_TUI_TEST_SOAK_OPS"] = str(arguments.ops)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    return pytest.main(
        ["-q", "-s", "-p", "no:cacheprovider", "tests/core/test_concurrency_soak.py"]
    )


if __name__ == "__main__":
    sys.exit(main())
