from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytest_plugins = ["pytester"]


# -- OpenTelemetry (the otel extra; imported only by the tests that use these fixtures) ----------------


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Finished spans, in memory."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exported = InMemorySpanExporter()
    yield exported
    exported.clear()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """A private tracer provider exporting to ``exporter`` (the global one is left alone)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    private = TracerProvider()
    private.add_span_processor(SimpleSpanProcessor(exporter))
    return private
