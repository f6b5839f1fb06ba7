"""Fixtures for the sidecar tests: a server on a free loopback port, the durabletask client, raw workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from durabletask import client as dt_client

from wftest.sidecar import SidecarServer

from ._support import QUIET, RawWorker, wait_until


@pytest.fixture
def sidecar() -> Iterator[SidecarServer]:
    """A fresh sidecar on a virtual clock (in memory, a free loopback port)."""
    server = SidecarServer(virtual_clock=True).start()
    try:
        yield server
    finally:
        server.stop(grace=1.0)


@pytest.fixture
def dt(sidecar: SidecarServer) -> Iterator[dt_client.TaskHubGrpcClient]:
    """The durabletask client, connected to ``sidecar``."""
    with dt_client.TaskHubGrpcClient(host_address=sidecar.address, logger=QUIET) as c:
        yield c


@pytest.fixture
def raw_worker(sidecar: SidecarServer) -> Iterator[Callable[..., RawWorker]]:
    """Opens raw workers on ``sidecar`` (waiting until the server has registered each); closes them after."""
    opened: list[RawWorker] = []

    def open_worker(**request: Any) -> RawWorker:
        # a worker closed just now may still be registered: wait until the server has let it go, or the new
        # one's registration could be hidden by the old one's going (1 -> 2 -> 1)
        before = sum(1 for w in opened if not w.closed)
        wait_until(lambda: sidecar.dispatcher.connections == before, "closed raw workers to be let go")
        worker = RawWorker(sidecar.address, **request)
        opened.append(worker)
        wait_until(lambda: sidecar.dispatcher.connections > before, "the raw worker to connect")
        return worker

    yield open_worker
    for worker in opened:
        worker.close()
