"""tests/interop: durabletask and Dapr orchestrators, unmodified, on wftest's engine (wftest.interop).

``wftest.interop`` is imported before any test module, so its import hook is in place before the Dapr SDK
loads: its vendored protobuf schema would otherwise collide with durabletask's, which tests/compat loads.
"""

import wftest.interop  # noqa: F401
