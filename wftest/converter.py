"""Payload conversion: how inputs, outputs, event data and custom status become JSON text.

Payloads travel in history events as JSON strings (``StringValue`` fields). ``None`` means "no value":
the field is left absent, never written as ``"null"``. The default converter writes what
``json.dumps`` writes (the same text as the ``durabletask`` package, so inputs compare equal across
the two), and also accepts dataclasses, enums, sets/tuples (as lists), ``datetime`` / ``date``
(ISO 8601 text) and objects with a ``to_json()`` method. Plug your own with ``Engine(converter=...)``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Converter(Protocol):
    """Turns payload values into JSON text and back. ``None`` must map to ``None`` both ways."""

    def serialize(self, value: Any) -> str | None:
        """Encode a value; ``None`` gives ``None`` (no payload)."""
        ...

    def deserialize(self, data: str | None) -> Any:
        """Decode a payload; ``None`` or ``""`` gives ``None``."""
        ...


class JsonConverter:
    """The default converter: standard JSON, with dataclasses, enums, sets and datetimes encoded.

    Example::

        >>> JsonConverter().serialize({"sku": "A1", "qty": 2})
        '{"sku": "A1", "qty": 2}'
        >>> JsonConverter().deserialize('[1, 2]')
        [1, 2]
    """

    def serialize(self, value: Any) -> str | None:
        """Encode ``value`` as JSON text; ``None`` stays ``None``."""
        if value is None:
            return None
        try:
            if type(value) is int:
                return int.__repr__(value)  # what json.dumps writes, without the encoder's set-up
            return _ENCODER.encode(value)
        except (TypeError, ValueError) as err:
            raise TypeError(f"cannot encode payload of type {type(value).__qualname__} as JSON: {err}") from err

    def deserialize(self, data: str | None) -> Any:
        """Decode JSON text; ``None`` and ``""`` give ``None``."""
        if not data:
            return None
        try:
            # raw_decode skips json.loads' two whitespace scans; anything unusual takes the full path
            value, end = _DECODER.raw_decode(data)
        except (ValueError, TypeError):  # TypeError: bytes, which json.loads also accepts
            return json.loads(data)
        return value if end == len(data) else json.loads(data)


def _encode_default(value: Any) -> Any:
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    raise TypeError(f"{type(value).__qualname__} is not JSON serializable")


# json.dumps(value, default=...) builds a new encoder on every call; one shared encoder (stateless,
# so safe across threads) writes the same text as json.dumps with the same options.
_ENCODER = json.JSONEncoder(default=_encode_default)
_DECODER = json.JSONDecoder()

DEFAULT_CONVERTER: Converter = JsonConverter()
