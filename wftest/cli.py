"""The ``wftest`` command line (``python -m wftest`` is the same).

Commands: ``demo`` runs an example orchestration on the in-memory engine and prints its timeline.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wftest", description="Durable workflows, deterministically tested.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("demo", help="run an example order workflow on the in-memory engine and print its timeline")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wftest`` command; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from wftest import __version__

        print(__version__)
        return 0
    if args.command == "demo":
        from wftest._demo import run_demo

        started = time.perf_counter()
        code = run_demo()
        print(f"wall time: {(time.perf_counter() - started) * 1000:.1f} ms")
        return code
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
