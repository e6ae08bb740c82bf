"""One base encoder per process, read straight from its safetensors file, gives the numbers that
transformers, sentence-transformers and peft give; a fresh process that answers a query imports none
of them."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from ragarbiter.models import resolve_model_path
from ragarbiter.retrievers import DenseEncoder
from ragarbiter.retrievers.bert import BertEncoder, base_encoder, load_base
from ragarbiter.retrievers.encoders import sentence_recipe

TEXTS = [
    "When was the lighthouse at Kestrel Bay first lit?",
    "  The harbour wall of Tarnby was rebuilt after the storm of 1921, twice.  " * 20,
    "x",
    "Ünïcode café, naïve résumé: 12.5% of 3,000 kroner.",
]


@pytest.fixture(scope="module")
def bundled():
    return str(resolve_model_path("all-MiniLM-L6-v2"))


def test_the_base_encoder_matches_transformers_bert(bundled):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(bundled)
    batch = tok(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt")
    reference = AutoModel.from_pretrained(bundled).eval()
    net, loader = load_base("all-MiniLM-L6-v2")
    assert loader == "safetensors" and isinstance(net, BertEncoder)
    with torch.inference_mode():
        want = reference(**batch).last_hidden_state
        got = net(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    keep = batch["attention_mask"].bool()
    torch.testing.assert_close(got[keep], want[keep], atol=2e-5, rtol=1e-4)


def test_one_read_per_process_and_one_module_per_device_and_dtype():
    a = base_encoder("all-MiniLM-L6-v2", "cpu", torch.float32)
    assert base_encoder("all-MiniLM-L6-v2", "cpu") is a
    half = base_encoder("all-MiniLM-L6-v2", "cpu", torch.bfloat16)
    assert half is not a and next(half.parameters()).dtype == torch.bfloat16
    assert not any(p.requires_grad for p in a.parameters())


def test_dense_and_token_vectors_match_sentence_transformers(bundled):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(bundled, device="cpu")
    enc = DenseEncoder()
    np.testing.assert_allclose(enc.encode(TEXTS), st.encode(TEXTS, normalize_embeddings=True), atol=2e-5)
    assert enc.max_tokens == st.max_seq_length == 256
    outs = st.encode(TEXTS, output_value=None, convert_to_numpy=False)
    specials = torch.tensor(sorted(set(st.tokenizer.all_special_ids) - {st.tokenizer.unk_token_id}))
    for features, got in zip(outs, enc.encode_tokens(TEXTS)):
        keep = features["attention_mask"].bool() & ~torch.isin(features["input_ids"], specials)
        want = torch.nn.functional.normalize(features["token_embeddings"][keep], dim=-1).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-5)


def test_only_a_plain_pooling_folder_is_run_directly(bundled, tmp_path):
    recipe = sentence_recipe(bundled)
    assert (recipe.max_length, recipe.pooling, recipe.normalize, recipe.lowercase) == (256, "mean", True, False)
    folder = tmp_path / "dense"
    shutil.copytree(bundled, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    assert sentence_recipe(folder) is None
    pooling = folder / "1_Pooling" / "config.json"
    (folder / "modules.json").write_text(json.dumps([m for m in modules if m["path"] != "2_Dense"]))
    assert sentence_recipe(folder) is not None
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps({**config, "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True}))
    assert sentence_recipe(folder) is None


def test_a_checkpoint_it_cannot_read_loads_through_transformers(tmp_path):
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        position_embedding_type="relative_key",
    )
    BertModel(config).save_pretrained(tmp_path)
    net, loader = load_base(str(tmp_path))
    assert loader == "transformers" and type(net).__name__ == "BertModel"


def test_a_forced_transformers_loader_is_named_in_the_error(monkeypatch):
    from ragarbiter.errors import ConfigError

    monkeypatch.setenv("RAGARBITER_LOADER", "onnx")
    with pytest.raises(ConfigError, match="RAGARBITER_LOADER must be 'auto' or 'transformers', got 'onnx'"):
        load_base("all-MiniLM-L6-v2")


COLD = """
import json, sys
from ragarbiter import StoreConfig, default_pipeline
from ragarbiter.retrievers import QdrantStore, index_passages
from ragarbiter.types import Passage
store = QdrantStore(StoreConfig(collection="cold", path=sys.argv[1]))
index_passages(store, [Passage(t) for t in json.loads(sys.argv[2])], progress=False)
context = default_pipeline(store, k=3).run("When was the lighthouse at Kestrel Bay first lit?")
heavy = ["sentence_transformers", "peft", "transformers.modeling_utils", "sklearn"]
print(json.dumps({"passages": len(context.passages), "imported": [m for m in heavy if m in sys.modules]}))
"""


def test_a_fresh_process_answers_without_importing_the_heavy_loaders(tmp_path):
    texts = [t.strip() for t in TEXTS[:2]] + ["The Kestrel Bay lighthouse was first lit in 1874."]
    run = subprocess.run(
        [sys.executable, "-c", COLD, str(tmp_path / "store"), json.dumps(texts)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out == {"passages": 3, "imported": []}
    assert "Loading weights" not in run.stderr
