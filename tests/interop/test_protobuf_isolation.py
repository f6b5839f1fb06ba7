"""durabletask's protobuf schema and the copy Dapr vendors collide in one process; wftest's import hook
(``wftest.interop._protos``) lets them share it, whichever is imported first. Each case runs in a fresh
interpreter, since a process can only ever load each schema once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

DURABLETASK_RUNS = """
    import durabletask.task as task
    import wftest.interop.durabletask as dt
    from wftest import WorkflowTester

    def hello(ctx: task.OrchestrationContext, name):
        return "hello " + name
    assert WorkflowTester().run(dt.orchestrator(hello), input="dt").output == "hello dt"
"""
DAPR_RUNS = """
    import dapr.ext.workflow as wf
    import wftest.interop.dapr as dapr
    from wftest import WorkflowTester

    def hi(ctx: wf.DaprWorkflowContext, name):
        return "hi " + name
    assert WorkflowTester().run(dapr.workflow(hi), input="dapr").output == "hi dapr"
"""
FULL_NAMES = """
    from durabletask.internal import orchestrator_service_pb2 as dtpb
    from dapr.ext.workflow._durabletask.internal import protos as dpb
    print(dtpb.HistoryEvent.DESCRIPTOR.full_name, dpb.HistoryEvent.DESCRIPTOR.full_name)
"""


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)


def test_without_wftest_the_second_schema_fails_to_load() -> None:
    done = run_python("""
        import durabletask.worker
        import dapr.ext.workflow
    """)
    assert done.returncode != 0
    assert "duplicate symbol" in done.stderr


def test_with_wftest_first_dapr_gets_a_package_of_its_own() -> None:
    done = run_python("import wftest\nimport durabletask.worker\nimport dapr.ext.workflow\n"
                      + textwrap.dedent(FULL_NAMES) + textwrap.dedent(DURABLETASK_RUNS) + textwrap.dedent(DAPR_RUNS))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["HistoryEvent", "wftest.isolated.dapr.HistoryEvent"]


def test_dapr_loaded_before_wftest_makes_durabletask_move_instead() -> None:
    done = run_python("import dapr.ext.workflow\nimport wftest\nimport durabletask.worker\n"
                      + textwrap.dedent(FULL_NAMES) + textwrap.dedent(DURABLETASK_RUNS) + textwrap.dedent(DAPR_RUNS))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["wftest.isolated.durabletask.HistoryEvent", "HistoryEvent"]
