"""The examples of docs/go-workflows.md run as they are (each block in a fresh namespace, as a script)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "go-workflows.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_an_example_for_each_topic() -> None:
    assert len(BLOCKS) == 7


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_the_example_runs(index: int) -> None:
    exec(compile(BLOCKS[index], f"docs/go-workflows.md (python block {index + 1})", "exec"), {"__name__": "__main__"})
