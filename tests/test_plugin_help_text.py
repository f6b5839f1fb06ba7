"""The pytest plugin's help text for the time backend states the current facts (see docs/testing.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_plugin import plugin

DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def test_the_time_backend_help_matches_how_the_backends_behave() -> None:
    _, help_text, default = plugin._OPTIONS["time_backend"]

    assert default == "freezegun"
    # freezegun is started once per process and toggled, so time-machine is no longer "faster to start"
    assert "faster" not in help_text
    assert "freezegun (the default; it scans the loaded modules once per process" in help_text
    assert "fakes the clock in C" in help_text and "time-machine extra" in help_text
    docs = DOCS.read_text(encoding="utf-8")
    assert "runs once per process; after that, switching the patch on and off around an activity costs microseconds" \
        in " ".join(docs.split())
    assert "fakes the clock in C" in docs


def test_pytest_help_shows_it(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")

    text = " ".join(result.stdout.str().split())
    assert "--wftest-time-backend=NAME how activities see virtual time: freezegun (the default;" in text
    assert "faster to start" not in text
