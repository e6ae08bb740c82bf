"""The encoder every assessor adapts: frozen bottom blocks, LoRA in the top blocks, a task head.

`AdaptedEncoder` is the trainable module (what `ragarbiter.training.Trainer` trains);
`AdaptedParts` is its inference side, loaded lazily from an adapter folder and sharing
the process-wide `Backbone` (and its cache) with the other assessors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ragarbiter.training import LoraSettings, apply_lora, load_heads, read_manifest, save_adapter

from .backbone import BackboneSpec, load_encoder_model, run_bottom, run_layers, shared_backbone, top_layers

logger = logging.getLogger(__name__)
_LOAD_LOCK = threading.RLock()


class AdaptedEncoder(nn.Module):
    """Trainable: the pretrained encoder with LoRA on blocks >= `spec.split`, plus `head`."""

    def __init__(
        self, spec: BackboneSpec, lora: LoraSettings, make_head: Callable[[int], nn.Module], head_settings: dict
    ) -> None:
        super().__init__()
        self.spec = spec
        net = load_encoder_model(spec.model)
        for p in net.parameters():
            p.requires_grad_(False)
        lora.layers = tuple(range(spec.split, len(net.encoder.layer)))
        self.encoder = apply_lora(net, lora)
        self.head = make_head(int(net.config.hidden_size))
        self.settings = {
            "backbone": {"model": spec.model, "split": spec.split, "max_length": spec.max_length},
            **head_settings,
            "lora": {
                "r": lora.r,
                "alpha": lora.alpha,
                "dropout": lora.dropout,
                "target_modules": list(lora.target_modules),
                "layers": list(lora.layers),
            },
        }

    def top_states(self, batch: dict) -> torch.Tensor:
        """(B, T, H) final token states for a padded batch of (query, passage) pairs."""
        bert = self.encoder.base_model.model
        mask = batch["attention_mask"]
        with torch.no_grad():  # the bottom is frozen and shared: no gradients to keep
            hidden = run_bottom(bert, self.spec.split, batch["input_ids"], batch["token_type_ids"], mask)
        return run_layers(bert.encoder.layer[self.spec.split :], hidden, mask)

    def save_adapter(self, folder: str | Path) -> list[str]:
        heads = {f"head.{k}": v for k, v in self.head.state_dict().items()}
        return save_adapter(folder, self.encoder, heads, base_model=self.spec.model)


class AdaptedParts:
    """Inference: shared backbone + this adapter's merged top blocks + its head, loaded on first use."""

    def __init__(self, adapter: str | Path, make_head, device: str | None = None) -> None:
        self.adapter = Path(adapter)
        self.make_head = make_head  # (hidden_size, hyperparameters) -> nn.Module
        self.device = device
        self._loaded = None

    @property
    def loaded(self):
        """(backbone, top layers, head), loaded once even when two threads ask at the same time."""
        if self._loaded is None:
            with _LOAD_LOCK:
                if self._loaded is None:
                    self._loaded = self._load()
        return self._loaded

    def _load(self):
        settings = read_manifest(self.adapter).get("hyperparameters", {})
        spec = BackboneSpec(**settings.get("backbone", {}))
        backbone = shared_backbone(spec, self.device)
        layers = top_layers(spec.model, spec.split, self.adapter, backbone.device).to(backbone.dtype)
        head = self.make_head(layers[0].output.dense.out_features, settings)
        head.load_state_dict({k.removeprefix("head."): v for k, v in load_heads(self.adapter).items()})
        logger.info("adapter loaded from %s", self.adapter)
        return backbone, layers, head.to(backbone.device).eval()
