"""``wftest serve``: the sidecar as a command, driven by the real durabletask client and worker."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
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


def test_serve_runs_a_durabletask_app_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "wftest", "serve", "--port", "0", "--virtual-clock", "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = re.search(r"listening on (\S+) \(sqlite .*serve\.db, virtual clock\)", banner)
        assert found, banner
        address = found.group(1)
        with running_worker(address, [nap], [shout]), \
                client.TaskHubGrpcClient(host_address=address, logger=QUIET) as hub:
            iid = hub.schedule_new_orchestration(nap, input="wake up")
            state = hub.wait_for_orchestration_completion(iid, timeout=30)
        assert state is not None and state.serialized_output == json.dumps("WAKE UP")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "wftest sidecar stopped" in out
    assert db.exists()


def test_serve_on_a_taken_port_fails_with_the_address(capsys: pytest.CaptureFixture[str]) -> None:
    with SidecarServer() as taken:
        assert main(["serve", "--port", str(taken.port)]) == 2
    assert f"127.0.0.1:{taken.port}" in capsys.readouterr().err


def test_serve_takes_a_database_or_memory_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--db", "x.db", "--memory"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
