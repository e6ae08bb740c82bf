"""CARE's tests share one tiny tokenizer per module."""

import pytest

from .tiny import make_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()
