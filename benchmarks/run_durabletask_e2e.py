"""durabletask-python's own end-to-end orchestration tests, run against ``wftest serve`` and against the
package's own in-memory sidecar, in one run: pass counts and wall times side by side.

    python benchmarks/run_durabletask_e2e.py PATH/TO/test_orchestration_e2e.py [--modes ...] [--in-process]

The test module is not part of wftest and nothing is fetched: take it from a checkout of
https://github.com/microsoft/durabletask-python (``tests/durabletask/test_orchestration_e2e.py``) at the
version of the installed ``durabletask`` package. It imports ``tests.durabletask._port_utils``; if that
file sits next to the module it is used, otherwise a stand-in with the same function is written.

The module's autouse fixture starts a sidecar per test with ``durabletask.testing.create_test_backend(port)``
and stops it after. The modes:

* ``durabletask``: the module as it is (the package's in-memory sidecar, real clock);
* ``wftest-virtual``: ``create_test_backend`` gives ``wftest serve --virtual-clock`` on that port instead:
  one process for the whole run (``--server session``, the default: the module's tests use fresh instance
  ids), one per test as the fixture asks (``--server test``), or a ``SidecarServer`` in the test process
  (``--server inprocess``);
* ``wftest-real``: the same with ``wftest serve`` on the real clock.

Whatever the server, each test also pays a second for ``TaskHubGrpcWorker.stop()``: the SDK's worker polls its
internal work queues with ``asyncio.wait_for(queue.get(), timeout=1.0)`` and notices the shutdown only when that
poll times out, which no sidecar can shorten. So a run cannot take less than about one second per test. The
script measures the time spent in ``stop()`` in every mode (a wrapper that only times it) and prints the rest
of the wall time beside it: that rest is what the sidecar and its clock decide.

Each mode runs in its own pytest process, in a scratch folder; the script prints a table and the failures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

#: a pytest plugin that swaps the package's test sidecar for wftest's (loaded with -p in the wftest modes)
PLUGIN = '''
"""Make durabletask.testing.create_test_backend(port) start wftest's sidecar on that port."""

import os
import re
import signal
import subprocess
import sys

import durabletask.testing

VIRTUAL = os.environ["WFTEST_E2E_CLOCK"] == "virtual"
SERVER = os.environ.get("WFTEST_E2E_SERVER", "session")  # session | test | inprocess
SESSION = {}  # port -> the one `wftest serve` process of the session on that port


class ServeProcess:
    """``wftest serve`` in a process of its own, with the interface the test module's fixture uses."""

    def __init__(self, port, shared=False):
        command = [sys.executable, "-m", "wftest", "serve", "--host", "localhost", "--port", str(port)]
        if VIRTUAL:
            command.append("--virtual-clock")
        self.shared = shared
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        banner = self.process.stdout.readline()
        if not re.search(r"listening on", banner):
            raise RuntimeError(f"wftest serve did not start: {banner!r}")

    def stop(self, grace=None):
        if not self.shared:
            self.close()

    def close(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def reset(self):
        pass


class InProcess:
    """wftest's ``SidecarServer`` in the test process."""

    def __init__(self, port):
        from wftest.sidecar import SidecarServer

        self.server = SidecarServer(host="localhost", port=port, virtual_clock=VIRTUAL).start()

    def stop(self, grace=None):
        self.server.stop(grace=1.0)

    def reset(self):
        pass


def create_test_backend(port=50051, max_history_size=10000):
    if SERVER == "inprocess":
        return InProcess(port)
    if SERVER == "test":
        return ServeProcess(port)
    if port not in SESSION:
        SESSION[port] = ServeProcess(port, shared=True)
    return SESSION[port]


def pytest_configure(config):
    durabletask.testing.create_test_backend = create_test_backend


def pytest_unconfigure(config):
    for server in SESSION.values():
        server.close()
'''

#: loaded in every mode: adds up the wall time spent in TaskHubGrpcWorker.stop() (it changes nothing)
TIMING = '''
"""Time TaskHubGrpcWorker.stop() (the SDK's shutdown) in the test process; the total goes to a file."""

import os
import time

from durabletask import worker

SPENT = [0.0, 0]
_stop = worker.TaskHubGrpcWorker.stop


def _timed_stop(self):
    started = time.perf_counter()
    try:
        return _stop(self)
    finally:
        SPENT[0] += time.perf_counter() - started
        SPENT[1] += 1


def pytest_configure(config):
    worker.TaskHubGrpcWorker.stop = _timed_stop


def pytest_unconfigure(config):
    with open(os.environ["WFTEST_E2E_STOP_REPORT"], "w") as report:
        report.write(f"{SPENT[0]} {SPENT[1]}")
'''

#: used when the test module's folder has no _port_utils.py
PORT_UTILS = '''
import socket


def find_free_port():
    """A free TCP port on the loopback interface (IPv6 first, as the sidecars bind both)."""
    for family, host in ((socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((host, 0))
                return probe.getsockname()[1]
        except OSError:
            continue
    raise OSError("no loopback interface to bind")
'''

MODES = ("durabletask", "wftest-virtual", "wftest-real")
SERVERS = {
    "session": "one `wftest serve` process for all tests",
    "test": "a `wftest serve` process per test",
    "inprocess": "a SidecarServer in the test process, per test",
}


@dataclass
class Outcome:
    mode: str
    seconds: float
    tests: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: int = 0
    note: str = ""
    #: wall seconds spent in TaskHubGrpcWorker.stop() (the SDK's shutdown) and how many calls
    stop_seconds: float = 0.0
    stops: int = 0

    @property
    def passed(self) -> int:
        return self.tests - len(self.failed) - self.skipped


def prepare(module: Path, scratch: Path) -> Path:
    """Lay the module out as ``tests/durabletask/<module>`` (its imports expect that); return its path."""
    package = scratch / "tests" / "durabletask"
    package.mkdir(parents=True)
    (scratch / "tests" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    port_utils = module.parent / "_port_utils.py"
    if port_utils.exists():
        shutil.copy(port_utils, package / "_port_utils.py")
    else:
        (package / "_port_utils.py").write_text(PORT_UTILS)
    (scratch / "wftest_e2e_plugin.py").write_text(PLUGIN)
    (scratch / "wftest_e2e_timing.py").write_text(TIMING)
    (scratch / "pytest.ini").write_text("[pytest]\n")
    target = package / module.name
    shutil.copy(module, target)
    return target


def run_mode(mode: str, target: Path, scratch: Path, server: str, select: str | None, timeout: float) -> Outcome:
    report = scratch / f"report-{mode}.xml"
    stop_report = scratch / f"stop-{mode}.txt"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "wftest_e2e_timing",
               "-c", str(scratch / "pytest.ini"),
               "--rootdir", str(scratch), f"--junitxml={report}", str(target.relative_to(scratch))]
    if select:
        command += ["-k", select]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(scratch), os.environ.get("PYTHONPATH")])),
               WFTEST_E2E_STOP_REPORT=str(stop_report))
    if mode != "durabletask":
        command[3:3] = ["-p", "wftest_e2e_plugin"]
        env["WFTEST_E2E_CLOCK"] = "virtual" if mode == "wftest-virtual" else "real"
        env["WFTEST_E2E_SERVER"] = server
    started = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Outcome(mode, time.perf_counter() - started, note=f"timed out after {timeout:.0f} s")
    seconds = time.perf_counter() - started
    if not report.exists():
        return Outcome(mode, seconds, note=f"pytest wrote no report:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    outcome = Outcome(mode, seconds)
    if stop_report.exists():
        spent, calls = stop_report.read_text().split()
        outcome.stop_seconds, outcome.stops = float(spent), int(calls)
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome.tests += 1
        if case.find("skipped") is not None:
            outcome.skipped += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome.failed.append(case.get("name", "?"))
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("module", type=Path,
                        help="a copy of durabletask-python's tests/durabletask/test_orchestration_e2e.py")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    parser.add_argument("--server", choices=SERVERS, default="session",
                        help="wftest modes: one `wftest serve` process for the run (session, the default), one per "
                        "test as the module's fixture asks (test), or a SidecarServer in the test process (inprocess)")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k expression (a subset of the tests)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per mode (default 900)")
    args = parser.parse_args()
    if not args.module.is_file():
        parser.error(f"{args.module}: no such file")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="wftest-e2e-") as folder:
        scratch = Path(folder)
        target = prepare(args.module.resolve(), scratch)
        for mode in modes:
            outcome = run_mode(mode, target, scratch, args.server, args.select, args.timeout)
            outcomes.append(outcome)
            print(f"{mode}: {outcome.passed}/{outcome.tests} passed in {outcome.seconds:.1f} s", flush=True)
    reference = next((o for o in outcomes if o.mode == "durabletask" and o.tests), None)
    where = SERVERS[args.server]
    print(f"\n{args.module.name} ({where} for the wftest modes)")
    print(f"{'mode':<16} {'passed':>8} {'failed':>7} {'skipped':>8} {'wall':>9} {'speed-up':>12} "
          f"{'in stop()':>10} {'rest':>9} {'rest speed-up':>14}")
    for o in outcomes:
        rest = o.seconds - o.stop_seconds
        ratio = f"{reference.seconds / o.seconds:.1f}x" if reference is not None and o.tests else ""
        rest_ratio = f"{(reference.seconds - reference.stop_seconds) / rest:.1f}x" if reference is not None and \
            o.tests and rest > 0 else ""
        if o is reference:
            ratio = rest_ratio = "(baseline)"
        print(f"{o.mode:<16} {o.passed:>4}/{o.tests:<3} {len(o.failed):>7} {o.skipped:>8} {o.seconds:8.1f}s "
              f"{ratio:>12} {o.stop_seconds:9.1f}s {rest:8.1f}s {rest_ratio:>14}")
    print("in stop(): wall time inside the SDK's TaskHubGrpcWorker.stop(), about 1 s per call whatever the sidecar; "
          "rest: the wall time without it")
    for o in outcomes:
        if o.failed:
            print(f"\n{o.mode} failed: {', '.join(o.failed)}")
        if o.note:
            print(f"\n{o.mode}: {o.note}")
    return 0 if all(not o.failed and not o.note and o.tests for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
