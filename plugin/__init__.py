"""ragarbiter: make retrieval-augmented generation trustworthy when its context is not."""

from __future__ import annotations

if __name__.partition(".")[0] != "ragarbiter":  # imported by its bare folder name: see ragarbiter._layout
    from ragarbiter._layout import hand_over

    hand_over(__name__, "ragarbiter")
else:
    import logging

    from . import errors
    from .config import ChunkConfig, EncoderConfig, RetrieverConfig, ServerLimits, StoreConfig
    from .events import (
        ConflictDetected,
        ContextReordered,
        Event,
        EventSink,
        JsonlSink,
        ListSink,
        LoggingSink,
        PassageDropped,
        PassageFlagged,
        PassagesRetrieved,
        SoftPromptBuilt,
        StageTimed,
    )
    from .registry import DEFAULT_STAGES, build_stage, default_pipeline, default_post_stages, register_stage
    from .stage import Pipeline, Stage
    from .types import Context, DroppedPassage, Judgement, Passage, content_id

    __version__ = "0.1.0"

    logging.getLogger(__name__).addHandler(logging.NullHandler())

    __all__ = [
        "DEFAULT_STAGES",
        "ChunkConfig",
        "ConflictDetected",
        "Context",
        "ContextReordered",
        "DroppedPassage",
        "EncoderConfig",
        "Event",
        "EventSink",
        "JsonlSink",
        "Judgement",
        "ListSink",
        "LoggingSink",
        "Passage",
        "PassageDropped",
        "PassageFlagged",
        "PassagesRetrieved",
        "Pipeline",
        "RetrieverConfig",
        "ServerLimits",
        "SoftPromptBuilt",
        "Stage",
        "StageTimed",
        "StoreConfig",
        "__version__",
        "build_stage",
        "content_id",
        "default_pipeline",
        "default_post_stages",
        "errors",
        "register_stage",
    ]
