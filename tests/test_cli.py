"""The ``wftest`` command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wftest.cli import main


def test_demo_prints_a_timeline_and_completes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "ExecutionStarted" in out and "order_workflow" in out
    assert "status:  COMPLETED" in out
    assert "virtual time elapsed: 32 days, 2:00:00" in out


def test_demo_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "wftest", "demo"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "TaskFailed" in done.stdout  # the first payment attempt fails and is retried


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out
