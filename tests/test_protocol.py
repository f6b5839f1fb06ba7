"""Layer 1: wftest's protobuf schema is current and wire-compatible with the durabletask package's.

The reference is the schema the ``durabletask`` package ships (``durabletask.internal.orchestrator_service_pb2``).
The checks are: the committed generated code matches a fresh protoc run; the two descriptors have the same
structure; and messages of every history-event, action and work-item kind, filled with non-default values,
cross between the two sets of classes in binary and JSON form without losing or changing anything.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from durabletask.entities import EntityInstanceId
from durabletask.internal import helpers
from durabletask.internal import orchestrator_service_pb2 as dt
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

import wftest.protos
from wftest.protos import orchestrator_service_pb2 as pb

REPO_ROOT = Path(__file__).resolve().parent.parent
GEN_SCRIPT = REPO_ROOT / "scripts" / "gen_protos.py"

# ---------------------------------------------------------------------------------------------------
# Generated code
# ---------------------------------------------------------------------------------------------------


def test_generated_code_is_not_stale() -> None:
    result = subprocess.run(
        [sys.executable, str(GEN_SCRIPT), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        "wftest/protos/orchestrator_service_pb2.py(i) do not match orchestrator_service.proto; "
        f"regenerate with `python scripts/gen_protos.py` and commit the result.\n{result.stdout}{result.stderr}"
    )


# ---------------------------------------------------------------------------------------------------
# Descriptor structure
# ---------------------------------------------------------------------------------------------------

_TYPE_NAMES = {number: name for name, number in descriptor_pb2.FieldDescriptorProto.Type.items()}
_LABEL_NAMES = {number: name for name, number in descriptor_pb2.FieldDescriptorProto.Label.items()}


Facts = dict[str, dict[str, object]]
"""``{"message X field f": {"number": 1, ...}, ...}``: one entry per enum, enum value, message and field."""


def _schema_facts(file: FileDescriptor) -> Facts:
    """Describe a file's enums and messages (nested ones too), one entry per element.

    Type names are given relative to the file's package, so a schema with and one without a package
    compare equal when their structure is the same.
    """
    prefix = f"{file.package}." if file.package else ""

    def relative(full_name: str) -> str:
        return full_name[len(prefix) :] if prefix and full_name.startswith(prefix) else full_name

    facts: Facts = {}

    def add_enum(enum: EnumDescriptor) -> None:
        name = relative(enum.full_name)
        facts[f"enum {name}"] = {"values": [value.name for value in enum.values]}
        for value in enum.values:
            facts[f"enum {name} value {value.name}"] = {"number": value.number}

    def add_message(message: Descriptor) -> None:
        name = relative(message.full_name)
        proto = descriptor_pb2.DescriptorProto()
        message.CopyToProto(proto)
        facts[f"message {name}"] = {
            "map_entry": proto.options.map_entry,
            "oneofs": [oneof.name for oneof in message.oneofs],
        }
        for field_proto in proto.field:
            field = message.fields_by_name[field_proto.name]
            facts[f"message {name} field {field.name}"] = {
                "number": field_proto.number,
                "type": _TYPE_NAMES[field_proto.type],
                "label": _LABEL_NAMES[field_proto.label],
                "proto3_optional": field_proto.proto3_optional,
                "oneof": field.containing_oneof.name if field.containing_oneof else None,
                "type_name": relative(field_proto.type_name.lstrip(".")),
                "json_name": field.json_name,
                "deprecated": field_proto.options.deprecated,
            }
        for nested in message.nested_types:
            add_message(nested)
        for enum in message.enum_types:
            add_enum(enum)

    for enum in file.enum_types_by_name.values():
        add_enum(enum)
    for message in file.message_types_by_name.values():
        add_message(message)
    return facts


def _schema_differences(reference: Facts, ours: Facts) -> list[str]:
    """Describe every element missing from or added to ``ours``, and every property that differs."""
    differences = []
    for element in sorted(reference.keys() | ours.keys()):
        if element not in ours:
            differences.append(f"missing in wftest: {element} {reference[element]}")
        elif element not in reference:
            differences.append(f"not in durabletask: {element} {ours[element]}")
        else:
            for key, expected in reference[element].items():
                actual = ours[element].get(key)
                if actual != expected:
                    differences.append(f"differs: {element} {key}: durabletask {expected!r}, wftest {actual!r}")
    return differences


def test_schema_matches_durabletask_descriptor() -> None:
    differences = _schema_differences(_schema_facts(dt.DESCRIPTOR), _schema_facts(pb.DESCRIPTOR))
    assert not differences, f"{len(differences)} schema difference(s):\n" + "\n".join(differences)


def test_schema_comparison_reports_every_difference() -> None:
    reference = _schema_facts(dt.DESCRIPTOR)
    changed = dict(reference)
    changed["message TaskScheduledEvent field tags"] = {
        **reference["message TaskScheduledEvent field tags"],
        "number": 6,
    }
    del changed["message TimerFiredEvent field timerId"]
    changed["message TimerFiredEvent field timer_id"] = {}
    assert _schema_differences(reference, changed) == [
        "differs: message TaskScheduledEvent field tags number: durabletask 5, wftest 6",
        "missing in wftest: message TimerFiredEvent field timerId "
        f"{reference['message TimerFiredEvent field timerId']}",
        "not in durabletask: message TimerFiredEvent field timer_id {}",
    ]


def test_schema_declares_the_wftest_package_and_no_service() -> None:
    assert (pb.DESCRIPTOR.package, dict(pb.DESCRIPTOR.services_by_name)) == ("wftest.protos", {})


def test_every_sidecar_method_has_its_request_and_response_messages() -> None:
    # The service is not declared (wftest.sidecar registers its handlers by path), but the messages of every
    # method are, with the same names; test_schema_matches_durabletask_descriptor checks their structure.
    service = dt.DESCRIPTOR.services_by_name["TaskHubSidecarService"]
    used = {m.name for method in service.methods for m in (method.input_type, method.output_type)
            if m.file is dt.DESCRIPTOR}
    assert len(service.methods) == 29 and "GetWorkItemsRequest" in used
    assert sorted(used - set(pb.DESCRIPTOR.message_types_by_name)) == []


# ---------------------------------------------------------------------------------------------------
# Both schemas in one process
# ---------------------------------------------------------------------------------------------------


def test_both_schemas_live_in_the_default_pool_side_by_side() -> None:
    pool = descriptor_pool.Default()
    ours = pool.FindMessageTypeByName("wftest.protos.HistoryEvent")
    theirs = pool.FindMessageTypeByName("HistoryEvent")
    assert (ours, theirs) == (pb.HistoryEvent.DESCRIPTOR, dt.HistoryEvent.DESCRIPTOR)
    assert ours is not theirs


@pytest.mark.parametrize(
    "imports",
    [
        "import wftest.protos.orchestrator_service_pb2; import durabletask.internal.orchestrator_service_pb2",
        "import durabletask.internal.orchestrator_service_pb2; import wftest.protos.orchestrator_service_pb2",
    ],
    ids=["wftest-first", "durabletask-first"],
)
def test_both_schemas_import_into_a_fresh_process_in_either_order(imports: str) -> None:
    result = subprocess.run([sys.executable, "-c", imports], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_orchestration_status_values_carry_the_prefix_and_match_durabletask() -> None:
    ours = dict(pb.OrchestrationStatus.items())
    assert all(name.startswith("ORCHESTRATION_STATUS_") for name in ours)
    assert ours == dict(dt.OrchestrationStatus.items())


def test_package_reexports_the_generated_classes() -> None:
    assert wftest.protos.__all__ == sorted(wftest.protos.__all__)
    assert all(
        getattr(wftest.protos, name) is getattr(pb, name)
        for name in wftest.protos.__all__
        if name != "orchestrator_service_pb2"
    )
    assert wftest.protos.orchestrator_service_pb2 is pb


# ---------------------------------------------------------------------------------------------------
# A generic filler: every field set to a distinct non-default value
# ---------------------------------------------------------------------------------------------------

MAX_DEPTH = 5
"""Message nesting below which fields that are not well-known leaf types are left unset (recursion)."""

_INTEGER_TYPES = {
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64,
}


def _is_leaf_message(descriptor: Descriptor) -> bool:
    """Well-known types (wrappers, Timestamp, Duration, Value, ...) are filled at any depth."""
    return bool(descriptor.full_name.startswith("google.protobuf."))


def _scalar(field: FieldDescriptor, counter: Iterator[int]) -> Any:
    """Return a fresh non-default value for a scalar or enum field."""
    n = next(counter)
    cpp_type = field.cpp_type
    if cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return True
    if cpp_type in _INTEGER_TYPES:
        return n
    if cpp_type in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
        return n + 0.25
    if cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        values = field.enum_type.values
        return values[1 + n % (len(values) - 1)].number if len(values) > 1 else values[0].number
    if field.type == FieldDescriptor.TYPE_BYTES:
        return f"{field.name}-{n}".encode()
    if cpp_type == FieldDescriptor.CPPTYPE_STRING:
        return f"{field.name}-{n}"
    raise AssertionError(f"unhandled field type {field.full_name}")


def _fill_message(message: Message, counter: Iterator[int], depth: int) -> None:
    """Fill a nested message; a few well-known types get realistic values instead of generic ones."""
    known: Any = message  # Timestamp, Duration or Value in the first three branches
    name = message.DESCRIPTOR.full_name
    n = next(counter)
    if name == "google.protobuf.Timestamp":
        known.seconds, known.nanos = 1_700_000_000 + n, n * 1000
    elif name == "google.protobuf.Duration":
        known.seconds, known.nanos = n, n * 1000
    elif name == "google.protobuf.Value":
        known.string_value = f"value-{n}"
    else:
        fill(message, counter=counter, depth=depth)


M = TypeVar("M", bound=Message)


def fill(
    message: M,
    *,
    choose: str | None = None,
    counter: Iterator[int] | None = None,
    depth: int = 0,
) -> M:
    """Set every field of ``message`` (recursively, up to ``MAX_DEPTH``) to distinct non-default values.

    One member is set per oneof: ``choose`` names it for the top-level message; otherwise (and in nested
    messages) the first member is used. Repeated fields and maps get two entries. The values depend only
    on the schema, so filling a durabletask message and a wftest message of the same type gives the same
    content.
    """
    counter = counter if counter is not None else itertools.count(1)
    chosen = {field.containing_oneof.name: field.name for field in message.DESCRIPTOR.fields if field.name == choose}
    if choose is not None and not chosen:
        raise ValueError(f"{message.DESCRIPTOR.full_name} has no oneof member {choose!r}")
    for field in message.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None and chosen.setdefault(oneof.name, oneof.fields[0].name) != field.name:
            continue
        target = field.message_type
        if target is not None and not _is_leaf_message(target) and depth >= MAX_DEPTH:
            continue
        value = getattr(message, field.name)
        if target is not None and target.GetOptions().map_entry:
            value_field = target.fields_by_name["value"]
            for _ in range(2):
                key = f"{field.name}-key-{next(counter)}"
                if value_field.message_type is not None:
                    _fill_message(value[key], counter, depth + 1)
                else:
                    value[key] = _scalar(value_field, counter)
        elif field.is_repeated and target is not None:
            for _ in range(2):
                _fill_message(value.add(), counter, depth + 1)
        elif field.is_repeated:
            value.extend(_scalar(field, counter) for _ in range(2))
        elif target is not None:
            value.SetInParent()
            _fill_message(value, counter, depth + 1)
        else:
            setattr(message, field.name, _scalar(field, counter))
    return message


def test_filler_sets_every_field_of_the_chosen_kind() -> None:
    event = fill(dt.HistoryEvent(), choose="executionStarted")
    started = event.executionStarted
    assert event.WhichOneof("eventType") == "executionStarted"
    assert len(started.ListFields()) == len(started.DESCRIPTOR.fields)
    assert started.parentInstance.orchestrationInstance.executionId.value


# ---------------------------------------------------------------------------------------------------
# Wire compatibility
# ---------------------------------------------------------------------------------------------------


def _unknown_fields(message: Message, path: str = "") -> list[str]:
    """Return the paths of messages (recursively) that hold fields their schema does not know."""
    found = [path or "<root>"] if len(UnknownFieldSet(message)) else []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for key, item in value.items():
                    found += _unknown_fields(item, f"{path}.{field.name}[{key!r}]")
        elif field.is_repeated:
            for index, item in enumerate(value):
                found += _unknown_fields(item, f"{path}.{field.name}[{index}]")
        else:
            found += _unknown_fields(value, f"{path}.{field.name}")
    return found


def assert_crosses_unchanged(source: Message, target_class: type[Message]) -> Message:
    """Send ``source`` to ``target_class`` in binary and in JSON form; assert nothing changed on the way."""
    data = source.SerializeToString(deterministic=True)
    parsed = target_class.FromString(data)
    assert _unknown_fields(parsed) == []
    assert parsed.SerializeToString(deterministic=True) == data
    assert json_format.MessageToDict(parsed) == json_format.MessageToDict(source)
    from_json = json_format.Parse(json_format.MessageToJson(source), target_class())
    assert from_json.SerializeToString(deterministic=True) == data
    return parsed


def _cases(message_name: str, oneof_name: str) -> list[Any]:
    """One test case per member of a durabletask message's oneof."""
    oneof = dt.DESCRIPTOR.message_types_by_name[message_name].oneofs_by_name[oneof_name]
    return [pytest.param(message_name, field.name, id=f"{message_name}.{field.name}") for field in oneof.fields]


HISTORY_EVENT_CASES = _cases("HistoryEvent", "eventType")
ACTION_CASES = _cases("OrchestratorAction", "orchestratorActionType")
WORK_ITEM_CASES = _cases("WorkItem", "request")
WORK_ITEM_MESSAGE_CASES = [
    pytest.param(name, None, id=name)
    for name in ("OrchestratorRequest", "OrchestratorResponse", "ActivityRequest", "ActivityResponse")
]
KIND_CASES = HISTORY_EVENT_CASES + ACTION_CASES + WORK_ITEM_CASES + WORK_ITEM_MESSAGE_CASES
OTHER_MESSAGE_CASES = [
    pytest.param(name, None, id=name)
    for name in dt.DESCRIPTOR.message_types_by_name
    if name not in {"HistoryEvent", "OrchestratorAction", "WorkItem"}
    and name not in {case.values[0] for case in WORK_ITEM_MESSAGE_CASES}
]


def test_every_history_event_and_action_kind_is_covered() -> None:
    events = [case.values[1] for case in HISTORY_EVENT_CASES]
    actions = [case.values[1] for case in ACTION_CASES]
    assert (len(events), events[0], events[-1]) == (28, "executionStarted", "executionRewound")
    assert (len(actions), actions[0], actions[-1]) == (8, "scheduleTask", "rewindOrchestration")


@pytest.mark.parametrize(("message_name", "kind"), KIND_CASES)
def test_durabletask_message_parses_unchanged_in_wftest(message_name: str, kind: str | None) -> None:
    source = fill(getattr(dt, message_name)(), choose=kind)
    assert_crosses_unchanged(source, getattr(pb, message_name))


@pytest.mark.parametrize(("message_name", "kind"), KIND_CASES)
def test_wftest_message_parses_unchanged_in_durabletask(message_name: str, kind: str | None) -> None:
    source = fill(getattr(pb, message_name)(), choose=kind)
    assert_crosses_unchanged(source, getattr(dt, message_name))


@pytest.mark.parametrize(("message_name", "kind"), OTHER_MESSAGE_CASES)
def test_every_other_message_crosses_unchanged_both_ways(message_name: str, kind: str | None) -> None:
    assert_crosses_unchanged(fill(getattr(dt, message_name)(), choose=kind), getattr(pb, message_name))
    assert_crosses_unchanged(fill(getattr(pb, message_name)(), choose=kind), getattr(dt, message_name))


def test_filled_messages_are_equal_on_both_sides() -> None:
    ours = fill(pb.HistoryEvent(), choose="taskFailed").SerializeToString(deterministic=True)
    theirs = fill(dt.HistoryEvent(), choose="taskFailed").SerializeToString(deterministic=True)
    assert ours == theirs


# ---------------------------------------------------------------------------------------------------
# A realistic history built by durabletask's own helpers
# ---------------------------------------------------------------------------------------------------

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _raised(error: Exception) -> Exception:
    """Return ``error`` after raising it, so that it carries a traceback (and a stack trace)."""
    try:
        raise error
    except Exception as caught:
        return caught


def durabletask_history() -> list[dt.HistoryEvent]:
    """A history touching every event kind durabletask's helpers can build, as its worker would store it."""
    trace = dt.TraceContext(traceParent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    fire_at = START + timedelta(days=30)
    return [
        helpers.new_orchestrator_started_event(START),
        helpers.new_execution_started_event(
            "order",
            "i1",
            encoded_input='{"sku": "A1"}',
            tags={"team": "shop"},
            version="2",
            parent_trace_context=trace,
        ),
        helpers.new_task_scheduled_event(1, "charge_card", encoded_input='{"amount": 3}'),
        helpers.new_timer_created_event(2, fire_at),
        helpers.new_orchestrator_completed_event(),
        helpers.new_orchestrator_started_event(START + timedelta(seconds=1)),
        helpers.new_task_completed_event(1, '{"ok": true}'),
        helpers.new_timer_fired_event(2, fire_at),
        helpers.new_task_scheduled_event(3, "ship"),
        helpers.new_task_failed_event(3, _raised(ValueError("no stock"))),
        helpers.new_sub_orchestration_created_event(4, "invoice", "i1:0004", encoded_input="7", version="1"),
        helpers.new_sub_orchestration_completed_event(4, '"paid"'),
        helpers.new_sub_orchestration_created_event(5, "refund", "i1:0005"),
        helpers.new_sub_orchestration_failed_event(5, _raised(RuntimeError("refund failed"))),
        helpers.new_event_sent_event(6, "warehouse", '{"sku": "A1"}', name="reserve"),
        helpers.new_event_raised_event("approval", "true"),
        helpers.new_suspend_event(encoded_input='"paused by ops"'),
        helpers.new_resume_event(),
        helpers.new_terminated_event(encoded_output='"stopped"'),
        helpers.new_execution_completed_event(
            dt.ORCHESTRATION_STATUS_FAILED,
            failure_details=helpers.new_failure_details(_raised(KeyError("sku"))),
        ),
        helpers.new_orchestrator_completed_event(),
    ]


def durabletask_actions() -> list[dt.OrchestratorAction]:
    """Actions as durabletask's executor builds them (entity ones included)."""
    return [
        helpers.new_schedule_task_action(1, "charge_card", '{"amount": 3}', {"team": "shop"}),
        helpers.new_create_timer_action(2, START + timedelta(hours=1)),
        helpers.new_create_sub_orchestration_action(3, "invoice", "i1:0003", "7", "1"),
        helpers.new_send_event_action(4, "warehouse", "reserve", '{"sku": "A1"}'),
        helpers.new_complete_orchestration_action(
            5,
            dt.ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
            result='{"round": 2}',
            carryover_events=[helpers.new_event_raised_event("approval", "false")],
            new_version="3",
        ),
        helpers.new_signal_entity_action(6, EntityInstanceId("counter", "c1"), "add", "1", "req-1"),
        helpers.new_call_entity_action(7, "i1", EntityInstanceId("counter", "c1"), "get", None, "req-2"),
    ]


def test_helper_built_history_round_trips_through_wftest_to_equal_events() -> None:
    history = durabletask_history()
    ours = [assert_crosses_unchanged(event, pb.HistoryEvent) for event in history]
    back = [dt.HistoryEvent.FromString(event.SerializeToString()) for event in ours]
    assert back == history


def test_helper_built_orchestrator_request_round_trips_through_wftest() -> None:
    history = durabletask_history()
    request = dt.OrchestratorRequest(
        instanceId="i1",
        executionId=helpers.get_string_value("e1"),
        pastEvents=history[:5],
        newEvents=history[5:],
    )
    ours = assert_crosses_unchanged(request, pb.OrchestratorRequest)
    assert dt.OrchestratorRequest.FromString(ours.SerializeToString()) == request


def test_helper_built_orchestrator_response_round_trips_through_wftest() -> None:
    response = dt.OrchestratorResponse(
        instanceId="i1",
        actions=durabletask_actions(),
        customStatus=helpers.get_string_value('"step 2"'),
        completionToken="token-1",
    )
    ours = assert_crosses_unchanged(response, pb.OrchestratorResponse)
    assert dt.OrchestratorResponse.FromString(ours.SerializeToString()) == response


def test_wftest_built_event_reads_in_durabletask_as_its_helper_builds_it() -> None:
    fire_at = START + timedelta(days=30)
    ours = pb.HistoryEvent(eventId=-1, timestamp={}, timerFired=pb.TimerFiredEvent(timerId=2))
    ours.timerFired.fireAt.FromDatetime(fire_at)
    theirs = assert_crosses_unchanged(ours, dt.HistoryEvent)
    assert theirs == helpers.new_timer_fired_event(2, fire_at)
