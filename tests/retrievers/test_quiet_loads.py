"""Loading the bundled encoder, as the retriever and the assessors do, prints no third-party progress bar."""

import pytest

from ragarbiter.assessors.backbone import load_encoder_model


@pytest.fixture
def bars_on():
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    yield hf_logging
    (hf_logging.enable_progress_bar if was_enabled else hf_logging.disable_progress_bar)()


def test_assessor_encoder_loads_quietly_and_leaves_the_bars_setting_alone(bars_on, capfd):
    load_encoder_model("all-MiniLM-L6-v2")
    assert "Loading weights" not in capfd.readouterr().err
    assert bars_on.is_progress_bar_enabled()


def test_sentence_encoder_loads_quietly(bars_on, capfd):
    from ragarbiter.models import resolve_model_path
    from ragarbiter.retrievers.encoders import _load_sentence_transformer

    _load_sentence_transformer.cache_clear()
    _load_sentence_transformer(str(resolve_model_path("all-MiniLM-L6-v2")), "cpu")
    assert "Loading weights" not in capfd.readouterr().err
    assert bars_on.is_progress_bar_enabled()
