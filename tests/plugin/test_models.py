import pytest

from ragarbiter.errors import ModelNotFoundError
from ragarbiter.models import bundled_encoder_path, resolve_model_path


@pytest.mark.parametrize("alias", ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "default"])
def test_default_encoder_resolves_to_the_bundled_weights(alias):
    path = resolve_model_path(alias)
    assert path == bundled_encoder_path()
    assert (path / "model.safetensors").exists() and (path / "tokenizer.json").exists()


def test_unknown_hub_id_offline_raises_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolve_model_path.cache_clear()
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model_path("acme/no-such-model-anywhere")
    msg = str(info.value)
    assert "acme/no-such-model-anywhere" in msg and "HF_HUB_OFFLINE" in msg and "local folder" in msg


def test_missing_local_folder_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "model"
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_path(str(missing))


def test_local_folder_is_used_as_is(tmp_path):
    assert resolve_model_path(str(tmp_path)) == tmp_path
