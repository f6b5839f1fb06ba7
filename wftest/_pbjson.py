"""A fast path for reading protobuf messages from their JSON mapping (history files).

``google.protobuf.json_format.ParseDict`` is written in Python and generic: it costs about 100 µs per
history event, which made loading ``*.history.json`` files most of the cost of ``Replayer.replay_many``.
:func:`parse_dict` handles the shapes that wftest's and durabletask's history files hold (int32, bool,
string and enum fields, ``Timestamp`` and ``StringValue``, nested messages, repeated strings and string
maps) with per-type field tables built once, 5-10x faster. Anything else (another JSON spelling such as
a number written as a string, ``null``, an unknown field, a second member of a oneof, a field type not
listed above, a value out of range) falls back to ``ParseDict``, which either accepts it or raises its
usual ``ParseError``: the result, and the error, are always ``ParseDict``'s.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)
_Setter = Callable[[Any, Any], None]


class _Fallback(Exception):
    """The fast path does not handle this input: let ``ParseDict`` decide."""


_TIMESTAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z\Z")
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


def parse_dict(raw: Any, message: M) -> M:
    """Fill ``message`` from ``raw`` (the protobuf JSON mapping, as ``json.loads`` returns it); returns it.

    The same result as ``json_format.ParseDict(raw, message)``, and the same ``ParseError`` on bad input.
    """
    try:
        _fill(message, raw, _table(cast(Descriptor, message.DESCRIPTOR)))
    except (_Fallback, KeyError, TypeError, ValueError, AttributeError):
        message.Clear()
        json_format.ParseDict(raw, message)
    return message


def _fill(message: Any, raw: Any, table: dict[str, tuple[int | None, _Setter]]) -> None:
    if type(raw) is not dict:
        raise _Fallback
    seen: set[int] | None = None
    for key, value in raw.items():
        group, setter = table[key]
        if group is not None:
            # two members of one oneof, or one field under both its names: ParseDict's error
            if seen is None:
                seen = {group}
            elif group in seen:
                raise _Fallback
            else:
                seen.add(group)
        setter(message, value)


_TABLES: dict[str, dict[str, tuple[int | None, _Setter]]] = {}


def _table(descriptor: Descriptor) -> dict[str, tuple[int | None, _Setter]]:
    """JSON key (json name and proto name) -> (group, setter), built once per message type.

    Keys of one group may not appear together: the members of a oneof (negative group numbers), and the
    two names of a field whose json name differs from its proto name (its field number).
    """
    table = _TABLES.get(descriptor.full_name)
    if table is None:
        table = {}
        for field in descriptor.fields:
            group: int | None = None
            if field.containing_oneof is not None:
                group = -1 - field.containing_oneof.index
            elif field.json_name != field.name:
                group = field.number
            table[field.json_name] = table[field.name] = (group, _setter(field))
        _TABLES[descriptor.full_name] = table
    return table


def _setter(field: FieldDescriptor) -> _Setter:
    name = field.name
    message_type = field.message_type
    if _is_repeated(field):
        if message_type is not None and message_type.GetOptions().map_entry:
            key_field, value_field = message_type.fields_by_name["key"], message_type.fields_by_name["value"]
            if key_field.type != FieldDescriptor.TYPE_STRING or value_field.type != FieldDescriptor.TYPE_STRING:
                return _unsupported

            def set_string_map(message: Any, value: Any) -> None:
                if type(value) is not dict or not all(type(v) is str for v in value.values()):
                    raise _Fallback
                getattr(message, name).update(value)

            return set_string_map
        if field.type == FieldDescriptor.TYPE_STRING:

            def set_strings(message: Any, value: Any) -> None:
                if type(value) is not list or not all(type(v) is str for v in value):
                    raise _Fallback
                getattr(message, name).extend(value)

            return set_strings
        return _unsupported
    if message_type is not None:
        if message_type.full_name == "google.protobuf.Timestamp":
            return lambda message, value: _set_timestamp(getattr(message, name), value)
        if message_type.full_name == "google.protobuf.StringValue":

            def set_string_value(message: Any, value: Any) -> None:
                if type(value) is not str:
                    raise _Fallback
                getattr(message, name).value = value

            return set_string_value
        if message_type.full_name.startswith("google.protobuf."):
            return _unsupported

        def set_message(message: Any, value: Any) -> None:
            child = getattr(message, name)
            child.SetInParent()
            _fill(child, value, _table(message_type))

        return set_message
    python_type = {
        FieldDescriptor.TYPE_STRING: str,
        FieldDescriptor.TYPE_BOOL: bool,
        FieldDescriptor.TYPE_INT32: int,
        FieldDescriptor.TYPE_SINT32: int,
        FieldDescriptor.TYPE_UINT32: int,
    }.get(field.type)
    if python_type is not None:

        def set_scalar(message: Any, value: Any) -> None:
            if type(value) is not python_type:  # bool is not int here; "1" for an int goes to ParseDict
                raise _Fallback
            setattr(message, name, value)  # ValueError when out of range

        return set_scalar
    if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        numbers = {v.name: v.number for v in field.enum_type.values}

        def set_enum(message: Any, value: Any) -> None:
            setattr(message, name, numbers[value])  # KeyError (unknown name, or a number): ParseDict decides

        return set_enum
    return _unsupported


def _is_repeated(field: FieldDescriptor) -> bool:
    # ``label`` is deprecated in newer protobuf releases, ``is_repeated`` absent from older ones
    is_repeated = getattr(field, "is_repeated", None)
    if isinstance(is_repeated, bool):
        return is_repeated
    return bool(getattr(field, "label", None) == FieldDescriptor.LABEL_REPEATED)


def _unsupported(message: Any, value: Any) -> None:
    raise _Fallback


def _set_timestamp(timestamp: Any, value: Any) -> None:
    """RFC 3339 in UTC (``Z``), as ``Timestamp.ToJsonString`` writes it; other spellings go to ParseDict."""
    if type(value) is not str:
        raise _Fallback
    timestamp.seconds, timestamp.nanos = _timestamp_parts(value)


@functools.lru_cache(maxsize=1024)  # the events of one step share their timestamp
def _timestamp_parts(value: str) -> tuple[int, int]:
    match = _TIMESTAMP.match(value)
    if match is None:
        raise _Fallback
    year, month, day, hour, minute, second, fraction = match.groups()
    when = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))  # ValueError if invalid
    seconds = (when.toordinal() - _EPOCH_ORDINAL) * 86400 + when.hour * 3600 + when.minute * 60 + when.second
    return seconds, int(fraction.ljust(9, "0")) if fraction else 0
