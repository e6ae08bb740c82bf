"""One query through the default pipeline, traced with OpenTelemetry (OpenInference attributes).

Indexes the sample corpus into a throwaway store, runs one question through `traced(pipeline)`
under an application span, and prints every span the SDK's in-memory exporter received: name,
OpenInference kind, parent, duration, attributes and events. Swap the in-memory exporter for an
OTLP one to see the same spans in Phoenix, Langfuse or any collector.

    pip install 'ragarbiter[otel]'
    python examples/otel_trace.py ["your question"]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragarbiter import StoreConfig, default_pipeline
from ragarbiter.adapters.otel import traced
from ragarbiter.retrievers import QdrantStore, index_paths

CORPUS = Path(__file__).parent / "corpus" / "kestrel_bay.jsonl"


def main(question: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tempfile.TemporaryDirectory() as folder:
        store = QdrantStore(StoreConfig(collection="kestrel", path=folder))
        index_paths(store, [CORPUS], progress=False)
        pipeline = traced(default_pipeline(store, k=6), provider)
        with provider.get_tracer("app").start_as_current_span("app.request"):
            pipeline.run(question)
        store.close()
    spans = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
    names = {s.context.span_id: s.name for s in spans}
    for s in spans:
        parent = names.get(s.parent.span_id) if s.parent else None
        kind = s.attributes.get("openinference.span.kind", "-")
        print(f"{s.name}  kind={kind}  parent={parent}  {(s.end_time - s.start_time) / 1e6:.1f} ms")
        for key, value in s.attributes.items():
            if key != "openinference.span.kind":
                print(f"    {key} = {str(value)[:160]}")
        for event in s.events:
            print(f"    event {event.name} {str(dict(event.attributes))[:200]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "When was the Kestrel Bay lighthouse first lit?")
