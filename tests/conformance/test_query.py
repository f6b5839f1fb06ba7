"""Querying instances: filters by status, creation time, id prefix, name, and paging."""

from __future__ import annotations

from datetime import timedelta

from wftest import Engine, OrchestrationContext, OrchestrationStatus

from ._support import T0, Gen


def finishes(ctx: OrchestrationContext, _: None) -> str:
    return "done"


def waits(ctx: OrchestrationContext, _: None) -> Gen:
    value = yield ctx.wait_for_external_event("never")
    return value


def populated() -> Engine:
    """order-0..order-4 completed (created at T0 + 0..4 h), job-0..job-2 running (T0 + 5..7 h), one failed."""
    engine = Engine()
    for i in range(5):
        engine.client.schedule_new_orchestration(finishes, instance_id=f"order-{i}")
        engine.advance(timedelta(hours=1))
    for i in range(3):
        engine.client.schedule_new_orchestration(waits, instance_id=f"job-{i}")
        engine.advance(timedelta(hours=1))
    engine.client.schedule_new_orchestration("not_registered", instance_id="broken")
    engine.run_until_idle()
    return engine


def test_query_by_runtime_status() -> None:
    engine = populated()
    # when querying RUNNING instances
    result = engine.client.query_instances(runtime_status=[OrchestrationStatus.RUNNING])
    # then only the jobs come back
    assert [s.instance_id for s in result.states] == ["job-0", "job-1", "job-2"]
    assert result.continuation_token is None
    both = engine.client.query_instances(runtime_status=[OrchestrationStatus.FAILED, OrchestrationStatus.RUNNING])
    assert sorted(s.instance_id for s in both.states) == ["broken", "job-0", "job-1", "job-2"]


def test_query_by_creation_time_range() -> None:
    engine = populated()
    # when querying instances created between T0+1h and T0+3h
    result = engine.client.query_instances(created_from=T0 + timedelta(hours=1), created_to=T0 + timedelta(hours=3))
    # then the bounds are inclusive
    assert [s.instance_id for s in result.states] == ["order-1", "order-2", "order-3"]


def test_query_by_instance_id_prefix() -> None:
    engine = populated()
    result = engine.client.query_instances(instance_id_prefix="order-")
    assert [s.instance_id for s in result.states] == [f"order-{i}" for i in range(5)]
    assert all(s.runtime_status == OrchestrationStatus.COMPLETED for s in result.states)


def test_query_filters_combine() -> None:
    engine = populated()
    result = engine.client.query_instances(
        runtime_status=[OrchestrationStatus.COMPLETED], instance_id_prefix="order-",
        created_from=T0 + timedelta(hours=3),
    )
    assert [s.instance_id for s in result.states] == ["order-3", "order-4"]


def test_query_pages_with_continuation_token() -> None:
    engine = populated()
    # when reading 3 at a time
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = engine.client.query_instances(page_size=3, continuation_token=token)
        pages += 1
        assert len(page.states) <= 3
        seen.extend(s.instance_id for s in page.states)
        token = page.continuation_token
        if token is None:
            break
    # then every instance is returned once, oldest first, over three pages
    assert pages == 3
    assert seen == [*(f"order-{i}" for i in range(5)), *(f"job-{i}" for i in range(3)), "broken"]


def test_query_pages_respect_filters() -> None:
    engine = populated()
    first = engine.client.query_instances(instance_id_prefix="order-", page_size=2)
    assert [s.instance_id for s in first.states] == ["order-0", "order-1"]
    second = engine.client.query_instances(instance_id_prefix="order-", page_size=2,
                                           continuation_token=first.continuation_token)
    assert [s.instance_id for s in second.states] == ["order-2", "order-3"]
    third = engine.client.query_instances(instance_id_prefix="order-", page_size=2,
                                          continuation_token=second.continuation_token)
    assert [s.instance_id for s in third.states] == ["order-4"]
    assert third.continuation_token is None


def test_query_with_no_match_returns_an_empty_page() -> None:
    engine = populated()
    result = engine.client.query_instances(instance_id_prefix="nothing-")
    assert result.states == [] and result.continuation_token is None


def test_query_without_payloads_leaves_them_out() -> None:
    engine = populated()
    result = engine.client.query_instances(instance_id_prefix="order-0", fetch_payloads=False)
    assert result.states[0].serialized_output is None
    with_payloads = engine.client.query_instances(instance_id_prefix="order-0")
    assert with_payloads.states[0].output == "done"
