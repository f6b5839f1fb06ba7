"""The ``wftest`` command line (``python -m wftest`` is the same).

Commands:
  demo                      run an example order workflow on the in-memory engine and print its timeline
  show FILE...              print the timeline of history files (or of a durabletask-go database)
  replay --registry M:A F.. replay history files against today's code; exit 1 with the diff on failure
  convert SRC DEST          convert between .history.json, .history.pb and a durabletask-go database
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wftest", description="Durable workflows, deterministically tested.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("demo", help="run an example order workflow on the in-memory engine and print its timeline")
    show = commands.add_parser("show", help="print the timeline of history files")
    show.add_argument("files", nargs="+", type=Path, metavar="FILE",
                      help=".history.json, .history.pb, or a durabletask-go sqlite database")
    show.add_argument("--instance", help="with a database: only this instance")
    replay = commands.add_parser("replay", help="replay history files against today's code")
    replay.add_argument("--registry", required=True, metavar="MODULE:ATTR", help="the wftest.Registry to replay with")
    replay.add_argument("files", nargs="+", type=Path, metavar="FILE", help="history files or folders of them")
    replay.add_argument("--lenient", action="store_true", help="changed inputs are warnings, not failures")
    convert = commands.add_parser("convert", help="convert a history between formats")
    convert.add_argument("source", type=Path, help=".history.json, .history.pb, or a durabletask-go database")
    convert.add_argument("dest", type=Path,
                         help="output file (.history.json or .history.pb); a folder when the source is a database")
    convert.add_argument("--instance", help="with a database: only this instance")
    return parser


def _histories(path: Path, instance: str | None) -> list[object]:
    from wftest import history

    if path.name.endswith((history.JSON_SUFFIX, history.PB_SUFFIX)) or path.suffix == ".json":
        return [history.load(path)]
    return list(history.from_durabletask_sqlite(path, instance))


def _show(args: argparse.Namespace) -> int:
    from wftest.testing import render_timeline

    for path in args.files:
        for item in _histories(path, args.instance):
            print(f"{path} :: {item.instance_id} ({item.orchestrator})\n")  # type: ignore[attr-defined]
            print(render_timeline(item.events))  # type: ignore[attr-defined]
            print()
    return 0


def _replay(args: argparse.Namespace) -> int:
    from wftest.testing import Replayer

    replayer = Replayer(args.registry, strict=not args.lenient)
    results = replayer.replay_many(args.files)
    failed = [r for r in results if not r.ok]
    for result in results:
        print(result.report() if not result.ok else f"ok    {result.name}")
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _convert(args: argparse.Namespace) -> int:
    from wftest import history

    items = _histories(args.source, args.instance)
    if len(items) == 1 and not args.dest.is_dir():
        history.save(args.dest, items[0].events)  # type: ignore[attr-defined]
        print(f"wrote {args.dest}")
        return 0
    args.dest.mkdir(parents=True, exist_ok=True)
    for item in items:
        target = args.dest / f"{item.instance_id}{history.JSON_SUFFIX}"  # type: ignore[attr-defined]
        history.save(target, item.events)  # type: ignore[attr-defined]
        print(f"wrote {target}")
    return 0


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
    handlers = {"show": _show, "replay": _replay, "convert": _convert}
    if args.command in handlers:
        from wftest.errors import WftestError

        try:
            return handlers[args.command](args)
        except (WftestError, ValueError) as err:
            print(f"wftest {args.command}: {err}", file=sys.stderr)
            return 2
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
