"""``SidecarServer``: the gRPC server, its engine and its dispatcher, started and stopped together."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

from wftest.backends import Backend
from wftest.engine import Clock, SystemClock, VirtualClock
from wftest.sidecar._dispatch import Dispatcher, SidecarEngine
from wftest.sidecar._service import SidecarService, _grpc

logger = logging.getLogger("wftest.sidecar")


class SidecarServer:
    """durabletask's ``TaskHubSidecarService`` on a wftest engine: the durabletask SDKs (Python, .NET, Java,
    JavaScript, Go) connect to it as they connect to durabletask-go's sidecar.

    The SDK's worker runs the orchestrator and activity code; wftest's engine keeps the histories, timers,
    queues and locks in its backend and applies each step's actions with the same runtime as for in-process
    orchestrators.

    Args:
        backend: storage (default: a new ``MemoryBackend``); a ``SqliteBackend`` survives restarts.
        virtual_clock: run on a ``VirtualClock`` starting at the current time that jumps to the next timer
            whenever nothing is runnable and no remote work is in flight (a one-day timer fires at once).
        clock: a clock of your own instead (a ``VirtualClock`` turns on the jumps too).
        host: the interface to listen on (``127.0.0.1``; ``localhost``, ``0.0.0.0`` or ``[::]`` work too).
        port: the port (0: a free one; read it back from :attr:`port`).
        autojump_threshold: virtual clock: seconds of real time the engine must have been idle before the
            clock jumps, so that a client's event raised right after a step beats a racing timer (0: jump at once).
        lock_timeout: how long a worker may hold a work item before it is taken back and delivered again.
        max_concurrent_steps: orchestration steps in flight at once, over all workers.
        ping_interval: seconds between health pings on an idle work-item stream (the SDKs reconnect after
            two minutes of silence).
        rpc_threads: gRPC handler threads (each connected worker's stream and each waiting client holds one).

    Example::

        from durabletask import client, worker

        with SidecarServer(virtual_clock=True) as server:         # a free loopback port
            with worker.TaskHubGrpcWorker(host_address=server.address) as w:
                w.add_orchestrator(my_orchestrator)
                w.start()
                c = client.TaskHubGrpcClient(host_address=server.address)
                iid = c.schedule_new_orchestration(my_orchestrator)
                state = c.wait_for_orchestration_completion(iid, timeout=30)
    """

    def __init__(
        self,
        *,
        backend: Backend | None = None,
        virtual_clock: bool = False,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        autojump_threshold: float = 0.1,
        lock_timeout: timedelta = timedelta(minutes=5),
        max_concurrent_steps: int = 32,
        ping_interval: float = 30.0,
        rpc_threads: int = 256,
    ) -> None:
        if clock is None:
            clock = VirtualClock(datetime.now(timezone.utc)) if virtual_clock else SystemClock()
        if lock_timeout <= timedelta(0):
            raise ValueError(f"lock_timeout must be positive, got {lock_timeout}")
        if ping_interval <= 0:
            raise ValueError(f"ping_interval must be positive, got {ping_interval}")
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.engine = SidecarEngine(backend=backend, clock=clock, lock_timeout=lock_timeout)
        self.dispatcher = Dispatcher(self.engine, autojump_threshold=autojump_threshold,
                                     max_concurrent_steps=max_concurrent_steps)
        self.engine.dispatcher = self.dispatcher
        self._service = SidecarService(self.engine, self.dispatcher, ping_interval=ping_interval)
        self._rpc_threads = rpc_threads
        self._server: Any = None
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        if self._port is None:
            raise RuntimeError("the sidecar is not started; call start() first")
        return self._port

    @property
    def address(self) -> str:
        """``host:port`` for the SDKs' ``host_address`` (``127.0.0.1:4001``)."""
        host = self.host
        if host in ("0.0.0.0", "[::]", "::"):
            host = "localhost"
        return f"{host}:{self.port}"

    @property
    def is_virtual(self) -> bool:
        """True if the engine runs on a virtual clock."""
        return isinstance(self.engine.clock, VirtualClock)

    def start(self) -> SidecarServer:
        """Bind the port and start serving; returns the server (``with SidecarServer().start() as s:``).

        Raises ``OSError`` if the address cannot be bound (for instance, the port is taken).
        """
        if self._server is not None:
            raise RuntimeError("the sidecar is already started")
        grpc = _grpc()
        server = grpc.server(
            ThreadPoolExecutor(self._rpc_threads, thread_name_prefix="wftest-sidecar-rpc"),
            handlers=(self._service.generic_handler(),),
            options=[
                ("grpc.so_reuseport", 0),  # a taken port is an error, not silently shared
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
        )
        target = f"{self.host}:{self._requested_port}"
        try:
            port = server.add_insecure_port(target)
        except RuntimeError as err:
            raise OSError(f"cannot listen on {target}: {err}") from None
        if not port:
            raise OSError(f"cannot listen on {target} (is the port taken?)")
        self._port = port
        self.dispatcher.start()
        server.start()
        self._server = server
        self._stopped.clear()
        logger.info("wftest sidecar listening on %s (%s, %s)", self.address, type(self.engine.backend).__name__,
                    self.engine.clock)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stop serving: no new work is handed out, work in flight gets ``grace`` seconds to finish, the rest is
        given back to the backend (it runs again on the next start, with a durable backend), streams end."""
        server = self._server
        if server is None:
            return
        self.dispatcher.stop(grace)
        server.stop(grace).wait()
        self._server = None
        self._stopped.set()
        logger.info("wftest sidecar stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server is stopped (or ``timeout`` seconds); True if it stopped."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> SidecarServer:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
