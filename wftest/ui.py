"""The diagnostics page: a small read-only web UI over a wftest database.

``wftest ui --db FILE`` on the command line; from Python::

    from wftest.ui import serve

    with serve("workflows.db", port=0) as ui:        # port 0: a free port
        print(ui.url)                                # http://127.0.0.1:43127/
        ...                                          # open it in a browser

The page lists the instances (filter by status, orchestrator name, creation time and instance-id prefix;
page through them with the backend's continuation tokens) and shows each instance: its facts, input,
output, custom status and failure, links to its parent and its sub-orchestrations, and the timeline
picture of its history (the chart and event table of :mod:`wftest.report`).

It only reads. A database file is opened read-only (sqlite ``mode=ro``), so a worker running on the same
file is never disturbed and the file is never written. The server uses the standard library only
(``http.server``), loads nothing from the network, escapes everything it shows, and listens on
127.0.0.1 unless told otherwise. It has no authentication: do not bind it to a public address.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os

from wftest._ui import UiServer as UiServer

__all__ = ["UiServer", "serve"]


def serve(source: str | os.PathLike[str] | object, *, host: str = "127.0.0.1", port: int = 0) -> UiServer:
    """Serve the diagnostics page over ``source`` in a background thread; returns the running server.

    Args:
        source: the path of a wftest sqlite database (opened read-only), or an ``Engine`` or ``Backend``
            object of this process (for tests and notebooks: ``serve(engine)`` shows an in-memory engine).
        host: the interface to listen on; the loopback interface by default.
        port: the TCP port; 0 (the default) picks a free one (read it from ``.port`` or ``.url``).

    The server answers in threads of its own until ``close()`` (or the end of a ``with`` block).

    Raises ``BackendError`` if the file is missing or is not a wftest database, ``OSError`` if the address
    cannot be bound, and ``TypeError`` for a source that is neither.

    Example::

        engine = Engine()
        engine.client.schedule_new_orchestration(order_workflow, input={"id": 7})
        engine.run_until_idle()
        with serve(engine) as ui:
            html = urllib.request.urlopen(ui.url).read()
    """
    return UiServer(source, host=host, port=port)
