"""Layer 7, the gRPC sidecar (extra ``grpc``): durabletask's ``TaskHubSidecarService`` on wftest's engine.

Any durabletask SDK connects to it as it would to durabletask-go's sidecar; the SDK runs the orchestrator
and activity code, wftest keeps the state (in memory or sqlite), optionally on a virtual clock. Run it
with ``wftest serve`` or start a :class:`SidecarServer` in-process. grpcio is imported when the server
starts, so importing this package costs nothing without it.

Layout: ``_server`` (the server object), ``_service`` (the RPC handlers), ``_dispatch`` (work items to
connected workers, the remote executor, the virtual clock's jumps), ``_convert`` (record <-> message).
"""

from wftest.sidecar._server import SidecarServer as SidecarServer

__all__ = ["SidecarServer"]
