"""The ``wftest`` command line (``python -m wftest`` is the same).

Commands:
  demo                      run an example order workflow on the in-memory engine and print its timeline
  show FILE...              print the timeline of history files (or of a durabletask-go database)
  replay --registry M:A F.. replay history files against today's code; exit 1 with the diff on failure
  convert SRC DEST          convert between .history.json, .history.pb and a durabletask-go database
  record M:ORCH --out DIR   run an orchestration on the in-memory engine (virtual clock) and save its history
  run M:ORCH [--db FILE]    run an orchestration for real (worker threads) and print its timeline
  worker --db FILE          run workers on a database until stopped (or until every instance is done)
                            [--retention 7d]: delete finished instances that long after they finished
  ps --db FILE              list the instances in a database
  show --db FILE ID...      print the timeline of instances in a database
  raise-event | terminate | suspend | resume | purge --db FILE ID ...   manage instances in a database
  purge --db FILE [--created-before T] [--status S] ...   purge every finished instance matching the filters
  lint PATH...              report non-deterministic code in orchestrators; exit 1 on findings
  serve [--port N] [--db FILE | --memory] [--virtual-clock] [--retention 7d]
                            serve durabletask's gRPC sidecar API (SDKs connect)
  ui --db FILE [--port N]   serve the read-only diagnostics page (instances, timelines) over a database
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wftest", description="Durable workflows, deterministically tested.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("demo", help="run an example order workflow on the in-memory engine and print its timeline")
    show = commands.add_parser("show", help="print the timeline of history files, or of instances in a database")
    show.add_argument("files", nargs="+", metavar="FILE_OR_ID",
                      help=".history.json, .history.pb, a durabletask-go database; with --db: instance ids")
    show.add_argument("--instance", help="with a durabletask-go database: only this instance")
    show.add_argument("--db", type=Path, help="a wftest sqlite database; the arguments are instance ids")
    show.add_argument("--html", type=Path, metavar="OUT.html",
                      help="write the timeline picture (one self-contained HTML page) instead of printing")
    show.add_argument("--time", choices=("virtual", "real", "steps"), default="virtual",
                      help="with --html: the chart's axis (default: virtual)")
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
    run = commands.add_parser("run", help="run an orchestration for real and print its timeline")
    run.add_argument("orchestrator", metavar="MODULE:NAME", help="an orchestrator function (or a registered name)")
    run.add_argument("--registry", metavar="MODULE:ATTR", help="the wftest.Registry to run with")
    run.add_argument("--input", default=None, help="the input, as JSON")
    run.add_argument("--instance-id", default=None)
    run.add_argument("--db", type=Path, help="a sqlite database file (default: in memory)")
    run.add_argument("--virtual-clock", action="store_true", help="run deterministically on a virtual clock")
    run.add_argument("--timeout", type=float, default=None, help="seconds to wait for completion")
    worker = commands.add_parser("worker", help="run workers on a database")
    worker.add_argument("--db", type=Path, required=True)
    worker.add_argument("--registry", metavar="MODULE:ATTR", required=True, help="the wftest.Registry to serve")
    worker.add_argument("--threads", type=int, default=4, help="threads for sync activities (default 4)")
    worker.add_argument("--orchestration-threads", type=int, default=1,
                        help="threads running orchestration steps (default 1)")
    worker.add_argument("--async-activities", type=int, default=100,
                        help="async activities run at once on the event loop (default 100; 0: on the threads)")
    worker.add_argument("--stop-timeout", type=float, default=10.0,
                        help="seconds in-flight work may finish on Ctrl-C before it is handed back (default 10)")
    worker.add_argument("--until-done", action="store_true", help="exit once every instance has finished")
    worker.add_argument("--lock-timeout", type=float, default=60.0,
                        help="seconds before another worker may take over the work of one that died (default 60)")
    worker.add_argument("--retention", type=_duration, default=None, metavar="DURATION",
                        help="delete finished instances, with their histories, this long after they finished "
                             "(e.g. 7d, 12h, 1h30m, 90s; default: keep them)")
    serve = commands.add_parser("serve", help="serve durabletask's gRPC sidecar API (TaskHubSidecarService): "
                                "durabletask SDK clients and workers connect to it")
    serve.add_argument("--port", type=int, default=4001, help="the port (default 4001; 0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="the interface to listen on (default 127.0.0.1)")
    storage = serve.add_mutually_exclusive_group()
    storage.add_argument("--db", type=Path, help="keep state in this sqlite file (created if missing)")
    storage.add_argument("--memory", action="store_true", help="keep state in memory (the default)")
    serve.add_argument("--virtual-clock", action="store_true",
                       help="timers fire at once when nothing else can run (virtual time starts now)")
    serve.add_argument("--autojump-threshold", type=float, default=0.1, metavar="SECONDS",
                       help="virtual clock: real seconds of idleness before the clock jumps (default 0.1)")
    serve.add_argument("--lock-timeout", type=float, default=300.0, metavar="SECONDS",
                       help="seconds a worker may hold a work item before it is delivered again (default 300)")
    serve.add_argument("--retention", type=_duration, default=None, metavar="DURATION",
                       help="delete finished instances, with their histories, this long after they finished "
                            "(e.g. 7d, 12h, 1h30m, 90s; default: keep them)")
    ps = commands.add_parser("ps", help="list the instances in a database")
    ps.add_argument("--db", type=Path, required=True)
    ps.add_argument("--status", action="append", default=None, help="only instances with this status")
    ps.add_argument("--limit", type=int, default=100)
    for verb, text in (("raise-event", "raise an event"), ("terminate", "terminate an instance"),
                       ("suspend", "suspend an instance"), ("resume", "resume an instance"),
                       ("purge", "purge a completed instance")):
        command = commands.add_parser(verb, help=text + " in a database")
        command.add_argument("--db", type=Path, required=True)
        command.add_argument("instance_id", metavar="ID", nargs="?" if verb == "purge" else None)
        if verb == "raise-event":
            command.add_argument("name")
            command.add_argument("--data", default=None, help="the payload, as JSON")
        if verb == "terminate":
            command.add_argument("--output", default=None, help="the output, as JSON")
        if verb in ("terminate", "purge"):
            command.add_argument("--no-recursive", action="store_true", help="leave sub-orchestrations alone")
        if verb == "purge":  # without ID: every finished instance matching the filters (at least one)
            for flag, what in (("--created-before", "created before"), ("--created-after", "created after"),
                               ("--completed-before", "finished before")):
                command.add_argument(flag, type=_iso_time, default=None, metavar="TIME",
                                     help=f"only instances {what} TIME (ISO 8601, UTC unless an offset is given)")
            command.add_argument("--status", action="append", default=None, metavar="STATUS",
                                 help="only instances with this final status (repeatable): COMPLETED, FAILED, "
                                 "TERMINATED")
            command.add_argument("--name", default=None, help="only instances of this orchestrator")
    lint = commands.add_parser("lint", help="report non-deterministic code in orchestrators (exit 1 on findings)")
    lint.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=".py files or folders (searched recursively)")
    lint.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    lint.add_argument("--ignore", default="", metavar="CODES", help="rule codes to skip, comma-separated: WF107,WF110")
    ui = commands.add_parser("ui", help="serve the read-only diagnostics page over a database (instances, timelines)")
    ui.add_argument("--db", type=Path, required=True, help="a wftest sqlite database (opened read-only)")
    ui.add_argument("--port", type=int, default=4002, help="the port (default 4002; 0 picks a free one)")
    ui.add_argument("--host", default="127.0.0.1", help="the interface to listen on (default 127.0.0.1)")
    return parser


def _open_db(path: Path) -> Any:
    from wftest import Engine, SqliteBackend, SystemClock

    if not path.exists():
        raise ValueError(f"{path}: no such database")
    return Engine(backend=SqliteBackend(path), clock=SystemClock())


def _load_attr(spec: str) -> Any:
    import importlib

    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"expected MODULE:NAME, got {spec!r}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot load {spec!r}: {err}") from None


def _run(args: argparse.Namespace) -> int:
    import json
    from datetime import timedelta

    from wftest import Engine, SqliteBackend, SystemClock
    from wftest.testing import render_timeline
    from wftest.testing._replayer import load_registry

    registry = load_registry(args.registry) if args.registry else None
    target: Any = args.orchestrator
    if registry is None or registry.get_orchestrator(args.orchestrator) is None:
        target = _load_attr(args.orchestrator)
    backend = SqliteBackend(args.db) if args.db else None
    engine = Engine(backend=backend, registry=registry, clock=None if args.virtual_clock else SystemClock())
    iid = engine.client.schedule_new_orchestration(
        target, input=json.loads(args.input) if args.input is not None else None, instance_id=args.instance_id)
    timeout = timedelta(seconds=args.timeout) if args.timeout is not None else None
    if args.virtual_clock:
        state = engine.client.wait_for_orchestration_completion(iid, timeout=timeout)
    else:
        with engine.start():
            state = engine.client.wait_for_orchestration_completion(iid, timeout=timeout)
    print(render_timeline(engine.history(iid)))
    print(f"\n{iid}: {state.runtime_status}  output: {state.serialized_output}")
    return 0 if state.runtime_status == "COMPLETED" else 1


def _worker(args: argparse.Namespace) -> int:
    import time as _time
    from datetime import timedelta

    from wftest import Engine, SqliteBackend, SystemClock
    from wftest.runtime import is_terminal
    from wftest.testing._replayer import load_registry

    engine = Engine(backend=SqliteBackend(args.db, retention=args.retention), registry=load_registry(args.registry),
                    clock=SystemClock(),
                    lock_timeout=timedelta(seconds=args.lock_timeout))
    engine.start(orchestration_threads=args.orchestration_threads, activity_threads=args.threads,
                 async_activities=args.async_activities)
    try:
        while True:
            _time.sleep(0.1)
            if args.until_done:
                states = engine.client.get_all_orchestration_states(fetch_payloads=False)
                if states and all(is_terminal(s.runtime_status.to_proto()) for s in states):
                    return 0
    except KeyboardInterrupt:
        return 0
    finally:
        engine.stop(timeout=args.stop_timeout)


def _ps(args: argparse.Namespace) -> int:
    engine = _open_db(args.db)
    page = engine.client.query_instances(runtime_status=args.status, page_size=args.limit, fetch_payloads=False)
    rows = [("INSTANCE", "NAME", "STATUS", "CREATED", "UPDATED")]
    rows += [(s.instance_id, s.name, str(s.runtime_status), s.created_at.isoformat(timespec="seconds"),
              s.last_updated_at.isoformat(timespec="seconds")) for s in page.states]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if page.continuation_token:
        print(f"(more than {args.limit}; use --limit)")
    return 0


def _manage(args: argparse.Namespace) -> int:
    import json

    client = _open_db(args.db).client
    if args.command == "purge":
        filters: dict[str, Any] = {"created_before": args.created_before, "created_after": args.created_after,
                                   "completed_before": args.completed_before, "statuses": args.status,
                                   "name": args.name}
        if args.instance_id is not None and any(value is not None for value in filters.values()):
            raise ValueError("give an instance ID or filters, not both")
    if args.command == "purge" and args.instance_id is None:
        if all(value is None for value in filters.values()):
            raise ValueError("give an instance ID, or filters (--created-before, --created-after, --completed-before, "
                             "--status, --name) that select the finished instances to purge")
        if args.status:
            filters["statuses"] = [status.upper() for status in args.status]
        deleted = client.purge_orchestrations(recursive=not args.no_recursive, **filters)
        print(f"purged {deleted.deleted_instance_count} instance(s)")
        return 0
    if client.get_orchestration_state(args.instance_id) is None:
        raise ValueError(f"no instance {args.instance_id!r} in {args.db}")
    if args.command == "raise-event":
        data = json.loads(args.data) if args.data is not None else None
        client.raise_orchestration_event(args.instance_id, args.name, data=data)
    elif args.command == "terminate":
        output = json.loads(args.output) if args.output is not None else None
        client.terminate_orchestration(args.instance_id, output=output, recursive=not args.no_recursive)
    elif args.command == "suspend":
        client.suspend_orchestration(args.instance_id)
    elif args.command == "resume":
        client.resume_orchestration(args.instance_id)
    else:
        deleted = client.purge_orchestration(args.instance_id, recursive=not args.no_recursive)
        print(f"purged {deleted.deleted_instance_count} instance(s)")
        return 0
    print(f"{args.command}: queued for {args.instance_id!r} (a worker on {args.db} applies it)")
    return 0


def _iso_time(text: str) -> Any:
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)") from None
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when.utcoffset() is not None else when


_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")


def _duration(text: str) -> Any:
    """A positive duration: seconds (``3600``) or amounts with units d, h, m, s (``7d``, ``1h30m``, ``90s``)."""
    from datetime import timedelta

    spec = text.strip().lower()
    try:
        seconds = float(spec)
    except ValueError:
        parts = _DURATION_PART.findall(spec)
        if not parts or "".join(amount + unit for amount, unit in parts) != spec:
            raise argparse.ArgumentTypeError(
                f"not a duration: {text!r} (e.g. 7d, 12h, 1h30m, 90s, or seconds)") from None
        seconds = sum(float(amount) * _DURATION_UNITS[unit] for amount, unit in parts)
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"the duration must be positive and finite: {text!r}")
    return timedelta(seconds=seconds)


def _histories(path: Path, instance: str | None) -> list[object]:
    from wftest import history

    if path.name.endswith((history.JSON_SUFFIX, history.PB_SUFFIX)) or path.suffix == ".json":
        return [history.load(path)]
    return list(history.from_durabletask_sqlite(path, instance))


def _show(args: argparse.Namespace) -> int:
    from wftest.testing import render_timeline

    if args.html is not None:
        return _show_html(args)
    if args.db is not None:
        engine = _open_db(args.db)
        for instance_id in args.files:
            state = engine.client.get_orchestration_state(instance_id)
            if state is None:
                raise ValueError(f"no instance {instance_id!r} in {args.db}")
            print(f"{instance_id} ({state.name}): {state.runtime_status}\n")
            print(render_timeline(engine.history(instance_id)))
            print()
        return 0
    for path in map(Path, args.files):
        for item in _histories(path, args.instance):
            print(f"{path} :: {item.instance_id} ({item.orchestrator})\n")  # type: ignore[attr-defined]
            print(render_timeline(item.events))  # type: ignore[attr-defined]
            print()
    return 0


def _show_html(args: argparse.Namespace) -> int:
    from wftest.report import html_timelines

    histories: list[Any] = []
    if args.db is not None:
        engine = _open_db(args.db)
        for instance_id in args.files:
            if engine.client.get_orchestration_state(instance_id) is None:
                raise ValueError(f"no instance {instance_id!r} in {args.db}")
            histories.append(engine.history(instance_id))
    else:
        histories = [item.events for path in map(Path, args.files) for item in _histories(path, args.instance)]  # type: ignore[attr-defined]
    args.html.parent.mkdir(parents=True, exist_ok=True)
    args.html.write_text(html_timelines(histories, time=args.time), encoding="utf-8")
    print(f"wrote {args.html}")
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
    import json
    from datetime import timedelta

    from wftest import Engine, history
    from wftest.testing._replayer import load_registry

    registry = load_registry(args.registry) if args.registry else None
    target: object = args.orchestrator
    if registry is None or registry.get_orchestrator(args.orchestrator) is None:
        target = _load_attr(args.orchestrator)
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


def _lint(args: argparse.Namespace) -> int:
    from wftest._lint import run_command

    return run_command(args.paths, output=args.format, ignore=args.ignore)


def _serve(args: argparse.Namespace) -> int:
    from datetime import timedelta

    try:
        import grpc  # noqa: F401
    except ImportError:
        raise ValueError("the sidecar needs grpcio: pip install 'wftest[grpc]'") from None
    from wftest import MemoryBackend, SqliteBackend
    from wftest.sidecar import SidecarServer

    backend = SqliteBackend(args.db, retention=args.retention) if args.db else MemoryBackend(retention=args.retention)
    server = SidecarServer(
        backend=backend, virtual_clock=args.virtual_clock, host=args.host,
        port=args.port, autojump_threshold=args.autojump_threshold,
        lock_timeout=timedelta(seconds=args.lock_timeout),
    )
    try:
        server.start()
    except OSError as err:
        raise ValueError(str(err)) from None
    storage = f"sqlite {args.db}" if args.db else "in memory"
    clock = "virtual clock" if args.virtual_clock else "real clock"
    retention = f", retention {args.retention}" if args.retention else ""
    print(f"wftest sidecar listening on {server.address} ({storage}, {clock}{retention}); Ctrl-C stops it",
          flush=True)
    try:
        _wait_for_stop_signal()
    finally:
        server.stop()
        if isinstance(backend, SqliteBackend):
            backend.close()
    print("wftest sidecar stopped", flush=True)
    return 0


def _wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM arrives, then put the previous signal handlers back."""
    import signal
    import threading

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.2):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ui(args: argparse.Namespace) -> int:
    from wftest._ui import is_loopback
    from wftest.ui import serve

    try:
        server = serve(args.db, host=args.host, port=args.port)
    except OSError as err:
        raise ValueError(str(err)) from None
    print(f"wftest ui: {args.db} (read-only) at {server.url}; Ctrl-C stops it", flush=True)
    if not is_loopback(args.host):
        print(f"wftest ui: warning: listening on {args.host}, and the page has no authentication", file=sys.stderr)
    try:
        _wait_for_stop_signal()
    finally:
        server.close()
    print("wftest ui stopped", flush=True)
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
    handlers = {"show": _show, "replay": _replay, "convert": _convert, "record": _record, "run": _run,
                "worker": _worker, "ps": _ps, "raise-event": _manage, "terminate": _manage, "suspend": _manage,
                "resume": _manage, "purge": _manage, "lint": _lint,
                "serve": _serve, "ui": _ui}
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
