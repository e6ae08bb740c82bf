"""Framework adapters. Each module imports its framework on import and names the extra if it is missing.

- `ragarbiter.adapters.langchain`: `ArbiterRetriever`, `ArbiterCompressor`, `ArbiterCallbackHandler`,
  `LangChainRetrieverStage` (``pip install 'ragarbiter[langchain]'``).
- `ragarbiter.adapters.llama_index`: `ArbiterRetriever`, `ArbiterPostprocessor`,
  `LlamaIndexRetrieverStage` (``pip install 'ragarbiter[llamaindex]'``).
- `ragarbiter.adapters.server`: the HTTP server behind `ragarbiter serve` (``pip install 'ragarbiter[serve]'``).
- `ragarbiter.adapters.otel`: `OpenInferenceSink`, `traced`: OpenTelemetry spans with OpenInference
  attributes for every stage (``pip install 'ragarbiter[otel]'``).
"""

if __name__.partition(".")[0] != "ragarbiter":  # imported by its bare folder name: see ragarbiter._layout
    from ragarbiter._layout import hand_over

    hand_over(__name__, "ragarbiter.adapters")
