"""A real headless browser for tests: Debian's chromium, driven through its command line only.

``render(page)`` opens a local HTML file in a fresh headless chromium (a throw-away profile) and returns
the DOM after load (``--dump-dom``), the page's console messages (``--enable-logging=stderr``), an optional
screenshot, and the address of every TCP connection the browser tried (from its ``--log-net-log``).

Nothing leaves the machine: every HTTP(S) request goes through a proxy on a closed loopback port and
host-name resolution fails, so chromium's own background requests die at 127.0.0.1 (tests assert it from
the net log). No new Python dependency: no selenium, no DevTools websocket.

chromium is not a Python package. ``.ci/run`` installs it with apt-get. Tests call
:func:`require_chromium`, which skips with the reason when chromium is missing on a developer machine, and
fails when ``CI`` or ``WFTEST_REQUIRE_BROWSER`` is set, so CI cannot skip these tests silently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium")
_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--disable-breakpad", "--no-pings",
    "--disable-features=MediaRouter,OptimizationHints,Translate,AutofillServerCommunication",
    # no traffic leaves the machine: HTTP(S) goes to a closed loopback port, names do not resolve
    "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--enable-logging=stderr", "--v=0",
]
_CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")


def find_chromium() -> str | None:
    """The chromium executable, or None."""
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The chromium executable; skip the test if it is missing, unless CI requires the browser tests."""
    found = find_chromium()
    if found:
        return found
    if os.environ.get("CI") or os.environ.get("WFTEST_REQUIRE_BROWSER"):
        pytest.fail("chromium is not installed, and CI runs the browser tests: .ci/run installs it with apt-get "
                    "(packages chromium and chromium-driver)")
    pytest.skip("chromium is not installed (Debian: apt-get install chromium); CI installs it through .ci/run")


@dataclass
class Rendered:
    """What the browser made of a page."""

    dom: str
    console: list[str]
    connections: list[str]
    stderr: str


def render(page: Path | str, *, screenshot: Path | None = None, size: tuple[int, int] = (1320, 1000),
           timeout: float = 90) -> Rendered:
    """Load ``page`` (a local file, or a URL string) in a fresh headless chromium; optionally save a PNG
    screenshot of the viewport. Only loopback URLs make sense: nothing else is reachable."""
    chromium = require_chromium()
    with tempfile.TemporaryDirectory(prefix="wftest-chromium-") as profile:
        net_log = Path(profile) / "net-log.json"
        command = [chromium, *_FLAGS, f"--user-data-dir={profile}", f"--log-net-log={net_log}",
                   f"--window-size={size[0]},{size[1]}", "--dump-dom"]
        if screenshot is not None:
            command.append(f"--screenshot={screenshot}")
        command.append(page if isinstance(page, str) else page.resolve().as_uri())
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"chromium exited with {done.returncode}:\n{done.stderr[-4000:]}")
        connections = _tcp_connections(net_log)
    console = [m.group(1) for line in done.stderr.splitlines() if (m := _CONSOLE.search(line))]
    return Rendered(done.stdout, console, connections, done.stderr)


def _tcp_connections(net_log: Path) -> list[str]:
    """The address of every TCP connection attempt recorded in a chromium net log."""
    if not net_log.exists():
        return []
    text = net_log.read_text(errors="replace").rstrip()
    if not text.endswith("}"):  # the log of a browser that was stopped is left unterminated
        text = text.rstrip(",\n") + "]}"
    log = json.loads(text)
    kinds = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    return [
        str(event["params"]["address"]) for event in log.get("events", [])
        if kinds.get(event.get("type")) == "TCP_CONNECT_ATTEMPT" and "address" in (event.get("params") or {})
    ]


# -- reading the screenshot ------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file (from its IHDR chunk)."""
    data = path.read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height
