"""Orchestrations/s through the gRPC sidecar with the durabletask Python SDK: in-memory vs sqlite, one run.

    python benchmarks/bench_sidecar.py [--orchestrations N] [--activities K] [--repeat R] [--no-reference]

Each orchestration is a sequence of K activities (K + 1 orchestration steps), run by a real
``durabletask.worker.TaskHubGrpcWorker`` connected over loopback to ``wftest serve`` (a separate process,
real clock, as deployed); the client schedules all N at once, then waits for each. The in-memory backend
is the baseline; ``--db`` on a sqlite file (WAL) shows what durability costs. For reference the same load
runs against durabletask's own in-memory test sidecar (``durabletask.testing.create_test_backend``, also
in a process of its own), in the same run. The SDK worker and the client share this process; with two
processes on a small machine the figures are end-to-end, not server-only.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from durabletask import client, task, worker

QUIET = logging.getLogger("bench.sidecar")
QUIET.setLevel(logging.ERROR)

#: durabletask's test sidecar as a process: ``python -c REFERENCE PORT``
REFERENCE = """
import signal, sys, threading
from durabletask.testing import create_test_backend
backend = create_test_backend(port=int(sys.argv[1]))
print(f"listening on localhost:{sys.argv[1]}", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
while not stop.wait(0.2):
    pass
backend.stop()
"""


def plus_one(ctx: task.ActivityContext, value: int) -> int:
    return value + 1


def sequence(ctx: task.OrchestrationContext, count: int) -> Any:
    value = 0
    for _ in range(count):
        value = yield ctx.call_activity(plus_one, input=value)
    return value


@contextmanager
def server_process(command: list[str]) -> Iterator[str]:
    """Start a sidecar process; yield the address it prints; stop it with SIGTERM."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"listening on (\S+)", line)
        if found is None:
            raise RuntimeError(f"the server did not start: {line!r}")
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def measure(address: str, orchestrations: int, activities: int) -> float:
    """Seconds from the first schedule to the last completion (the worker is connected and warm)."""
    with client.TaskHubGrpcClient(host_address=address, logger=QUIET) as hub:
        warm = hub.schedule_new_orchestration(sequence, input=2)
        hub.wait_for_orchestration_completion(warm, timeout=60)
        started = time.perf_counter()
        ids = [hub.schedule_new_orchestration(sequence, input=activities) for _ in range(orchestrations)]
        for iid in ids:
            state = hub.wait_for_orchestration_completion(iid, timeout=600)
            if state is None or state.serialized_output != str(activities):
                raise RuntimeError(f"{iid} did not complete as expected: {state}")
        return time.perf_counter() - started


def run(command: list[str], orchestrations: int, activities: int) -> float:
    with server_process(command) as address:
        w = worker.TaskHubGrpcWorker(host_address=address, logger=QUIET)
        w.add_orchestrator(sequence)
        w.add_activity(plus_one)
        w.start()
        try:
            return measure(address, orchestrations, activities)
        finally:
            w.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orchestrations", type=int, default=200)
    parser.add_argument("--activities", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true", help="skip durabletask's own test sidecar")
    args = parser.parse_args()
    serve = [sys.executable, "-m", "wftest", "serve", "--port", "0"]
    with tempfile.TemporaryDirectory() as folder:
        servers = {"wftest memory (baseline)": lambda _: serve,
                   "wftest sqlite file (WAL)": lambda n: [*serve, "--db", str(Path(folder) / f"bench-{n}.db")]}
        if not args.no_reference:
            servers["durabletask in-memory sidecar"] = lambda _: [sys.executable, "-c", REFERENCE, str(free_port())]
        results: dict[str, list[float]] = {name: [] for name in servers}
        for n in range(args.repeat):  # interleaved, so load changes hit every server alike
            for name, command in servers.items():
                results[name].append(run(command(n), args.orchestrations, args.activities))
    baseline = min(results["wftest memory (baseline)"])
    steps = args.orchestrations * (args.activities + 1)
    print(f"{args.orchestrations} orchestrations x {args.activities} activities through the sidecar "
          f"({steps} orchestration steps + {args.orchestrations * args.activities} activities), "
          f"best and median of {args.repeat}")
    print(f"{'server':<32} {'orch/s best':>11} {'orch/s med':>10} {'steps/s':>8} {'time':>8} {'vs memory':>10}")
    for name, samples in results.items():
        best, median = min(samples), statistics.median(samples)
        print(f"{name:<32} {args.orchestrations / best:11.1f} {args.orchestrations / median:10.1f} "
              f"{steps / best:8.0f} {best:7.2f}s {best / baseline:9.2f}x")


if __name__ == "__main__":
    main()
