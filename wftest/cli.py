"""The ``wftest`` command line (``python -m wftest`` is the same).

Commands:
  demo                      run an example order workflow on the in-memory engine and print its timeline
  show FILE...              print the timeline of history files (or of a durabletask-go database)
  replay --registry M:A F.. replay history files against today's code; exit 1 with the diff on failure
  convert SRC DEST          convert between .history.json, .history.pb and a durabletask-go database
  record M:ORCH --out DIR   run an orchestration on the in-memory engine (virtual clock) and save its history
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
    record = commands.add_parser("record", help="run an orchestration (virtual clock) and save its history")
    record.add_argument("orchestrator", metavar="MODULE:NAME",
                        help="an orchestrator function, or a registered name with --registry")
    record.add_argument("--registry", metavar="MODULE:ATTR", help="the wftest.Registry to run with")
    record.add_argument("--input", default=None, help="the input, as JSON")
    record.add_argument("--instance-id", default=None, help="the instance id (default: derived from the name)")
    record.add_argument("--out", type=Path, default=Path("."), help="folder for the .history.json files")
    record.add_argument("--event", action="append", default=[], metavar="AFTER:NAME[:JSON]",
                        help="raise an event after a virtual delay in seconds, e.g. 3600:approval:true")
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


def _record(args: argparse.Namespace) -> int:
    import importlib
    import json
    from datetime import timedelta

    from wftest import Engine, history
    from wftest.testing._replayer import load_registry

    registry = load_registry(args.registry) if args.registry else None
    target: object = args.orchestrator
    if registry is None or registry.get_orchestrator(args.orchestrator) is None:
        module_name, _, attr = args.orchestrator.partition(":")
        if not attr:
            raise ValueError(f"expected MODULE:NAME for the orchestrator, got {args.orchestrator!r}")
        target = getattr(importlib.import_module(module_name), attr)
    engine = Engine(registry=registry)
    name = engine.registry.orchestrator_name(target)  # type: ignore[arg-type]
    iid = engine.client.schedule_new_orchestration(
        name, input=json.loads(args.input) if args.input is not None else None,
        instance_id=args.instance_id or f"{name}-recorded",
    )
    events = []
    for spec in args.event:
        after, _, rest = spec.partition(":")
        event_name, _, data = rest.partition(":")
        if not after or not event_name:
            raise ValueError(f"--event takes AFTER_SECONDS:NAME[:JSON], got {spec!r}")
        events.append((float(after), event_name, json.loads(data) if data else None))
    elapsed = 0.0
    for after, event_name, data in sorted(events, key=lambda e: e[0]):
        engine.advance(timedelta(seconds=after - elapsed))
        elapsed = after
        engine.client.raise_orchestration_event(iid, event_name, data=data)
    state = engine.client.wait_for_orchestration_completion(iid)
    args.out.mkdir(parents=True, exist_ok=True)
    path = history.save(args.out / f"{iid}{history.JSON_SUFFIX}", engine.history(iid))
    print(f"{state.runtime_status}: wrote {path}")
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
    handlers = {"show": _show, "replay": _replay, "convert": _convert, "record": _record}
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
