"""Testing context propagation: the tenant of the caller reaches every activity and child, replays included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tenants import TENANT, WRITES, billing, book_courier

from wftest import ContextVarPropagator, Engine, SqliteBackend, WorkflowTester

ORDER = {"id": 7, "parcels": ["a", "b"]}


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    WRITES.clear()
    token = TENANT.set("nobody")  # the test's own context: never what the workflow should see
    yield
    TENANT.reset(token)


def test_every_activity_and_child_writes_into_the_callers_tenant(workflow_tester: WorkflowTester) -> None:
    workflow_tester.hooks.register(ContextVarPropagator(TENANT))
    TENANT.set("acme")

    result = workflow_tester.run(billing, ORDER)

    assert result.output == {"invoice": "acme-INV-7", "tracking": ["acme-TRACK-a", "acme-TRACK-b"], "tenant": "acme"}
    assert WRITES == {"acme": ["invoice 7", "courier a", "courier b", "notify order 7 shipped"]}


def test_a_mocked_activity_sees_the_tenant_too(workflow_tester: WorkflowTester) -> None:
    workflow_tester.hooks.register(ContextVarPropagator(TENANT))
    workflow_tester.on_activity(book_courier).calls(lambda parcel: f"mock-{TENANT.get()}-{parcel}")
    TENANT.set("globex")

    result = workflow_tester.run(billing, ORDER)

    assert result.output["tracking"] == ["mock-globex-a", "mock-globex-b"]


def test_two_tenants_on_one_engine_never_mix() -> None:
    engine = Engine(backend=SqliteBackend(":memory:"), sticky=False)  # every step replays from the database
    engine.hooks.register(ContextVarPropagator(TENANT))
    TENANT.set("acme")
    first = engine.client.schedule_new_orchestration(billing, input=ORDER)
    TENANT.set("globex")
    second = engine.client.schedule_new_orchestration(billing, input={"id": 8, "parcels": ["c"]})
    TENANT.set("nobody")

    assert engine.client.wait_for_orchestration_completion(first).output["tenant"] == "acme"
    assert engine.client.wait_for_orchestration_completion(second).output["tenant"] == "globex"
    assert sorted(WRITES) == ["acme", "globex"]
    assert WRITES["globex"] == ["invoice 8", "courier c", "notify order 8 shipped"]
