"""The cross-replay corpus: the same orchestrators written for ``durabletask`` and for wftest.

``dt_orchestrators.py`` and ``wf_orchestrators.py`` differ only in their import line
(``import durabletask.task as task`` / ``import wftest as task``); a test checks that. Both use the
activities of ``activities.py``, which the driver runs (deterministically) for either executor.
``scenarios.py`` says how each orchestrator is started and which external events reach it when.
"""
