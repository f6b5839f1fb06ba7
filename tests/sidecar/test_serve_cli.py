"""``wftest serve``: the sidecar as a command, driven by the real durabletask client and worker."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from durabletask import client, task

from wftest.cli import main
from wftest.sidecar import SidecarServer

from ._support import QUIET, running_worker


def nap(ctx: task.OrchestrationContext, name: str) -> Any:
    yield ctx.create_timer(timedelta(days=1))
    return (yield ctx.call_activity(shout, input=name))


def shout(ctx: task.ActivityContext, name: str) -> str:
    return name.upper()


@contextmanager
def serving(*options: str) -> Iterator[tuple[str, list[str]]]:
    """``wftest serve --port 0 OPTIONS`` in a process: yields its banner and a list that receives its output
    after it stopped on SIGTERM, as it must, with exit code 0."""
    process = subprocess.Popen([sys.executable, "-m", "wftest", "serve", "--port", "0", *options],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output: list[str] = []
    try:
        assert process.stdout is not None
        yield process.stdout.readline(), output
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        output.append(out)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err


def test_serve_runs_a_durabletask_app_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    with serving("--virtual-clock", "--db", str(db)) as (banner, output):
        found = re.search(r"listening on (\S+) \(sqlite .*serve\.db, virtual clock\)", banner)
        assert found, banner
        with running_worker(found.group(1), [nap], [shout]), \
                client.TaskHubGrpcClient(host_address=found.group(1), logger=QUIET) as hub:
            iid = hub.schedule_new_orchestration(nap, input="wake up")
            state = hub.wait_for_orchestration_completion(iid, timeout=30)
        assert state is not None and state.serialized_output == json.dumps("WAKE UP")
    assert "wftest sidecar stopped" in output[0]
    assert db.exists()


def test_serve_with_retention_forgets_instances_finished_longer_ago() -> None:
    with serving("--virtual-clock", "--retention", "1h") as (banner, _):
        found = re.search(r"listening on (\S+) \(in memory, virtual clock, retention 1:00:00\)", banner)
        assert found, banner
        with running_worker(found.group(1), [nap], [shout]), \
                client.TaskHubGrpcClient(host_address=found.group(1), logger=QUIET) as hub:
            first = hub.schedule_new_orchestration(nap, input="first")
            assert hub.wait_for_orchestration_completion(first, timeout=30) is not None
            assert hub.get_orchestration_state(first) is not None  # finished, not yet an hour ago
            second = hub.schedule_new_orchestration(nap, input="second")  # a day's timer: the clock moves on
            assert hub.wait_for_orchestration_completion(second, timeout=30) is not None
            assert hub.get_orchestration_state(first) is None
            assert hub.get_orchestration_state(second) is not None


def test_serve_on_a_taken_port_fails_with_the_address(capsys: pytest.CaptureFixture[str]) -> None:
    with SidecarServer() as taken:
        assert main(["serve", "--port", str(taken.port)]) == 2
    assert f"127.0.0.1:{taken.port}" in capsys.readouterr().err


def test_serve_takes_a_database_or_memory_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--db", "x.db", "--memory"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
