"""The durabletask corpus of tests/compat (orchestrators written for durabletask, and the same code
ported to wftest by an import change), imported under the name pytest gave that package."""

from __future__ import annotations

try:  # tests/ is a folder on sys.path: pytest names the package "compat"
    from compat import driver
    from compat.corpus import activities, dt_orchestrators, wf_orchestrators
    from compat.corpus.scenarios import SCENARIOS, Scenario
    from compat.test_cross_replay import KNOWN_DIFFERENCES, _normalized
except ImportError:  # tests/ is a package
    from tests.compat import driver  # type: ignore[no-redef]
    from tests.compat.corpus import activities, dt_orchestrators, wf_orchestrators  # type: ignore[no-redef]
    from tests.compat.corpus.scenarios import SCENARIOS, Scenario  # type: ignore[no-redef]
    from tests.compat.test_cross_replay import KNOWN_DIFFERENCES, _normalized  # type: ignore[no-redef]

#: an event as a dict, without the differences compat documents as harmless (failure wrappers, stack
#: traces, a retried call's absent input sent as "", carried-over events' zero timestamps)
normalized = _normalized

__all__ = ["KNOWN_DIFFERENCES", "SCENARIOS", "Scenario", "activities", "driver", "dt_orchestrators", "normalized",
           "wf_orchestrators"]
