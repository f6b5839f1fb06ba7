"""JsonConverter: the fast paths write and read exactly what json.dumps / json.loads do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wftest import JsonConverter

CONVERTER = JsonConverter()


@pytest.mark.parametrize("value", [0, -7, 2**70, True, False, 1.5, "héllo", [1, "a"], {"b": 1, "a": None}])
def test_serialize_writes_what_json_dumps_writes(value: Any) -> None:
    assert CONVERTER.serialize(value) == json.dumps(value)


def test_serialize_none_is_no_payload() -> None:
    assert CONVERTER.serialize(None) is None


def test_an_int_too_long_for_json_is_a_type_error_like_any_unencodable_payload() -> None:
    with pytest.raises(TypeError, match="cannot encode payload of type int"):
        CONVERTER.serialize(10**5000)


@pytest.mark.parametrize("text", ["5", '{"a": [1, 2]}', ' "padded" ', "\t[true]\n", '"\\u00e9"'])
def test_deserialize_reads_what_json_loads_reads(text: str) -> None:
    assert CONVERTER.deserialize(text) == json.loads(text)


@pytest.mark.parametrize("data", [None, ""])
def test_deserialize_no_payload_is_none(data: str | None) -> None:
    assert CONVERTER.deserialize(data) is None


def test_deserialize_accepts_bytes_as_json_loads_does() -> None:
    assert CONVERTER.deserialize(b"[1]") == [1]  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["5 x", "{", "nope"])
def test_deserialize_rejects_malformed_json(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        CONVERTER.deserialize(text)
