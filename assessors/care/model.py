"""CARE's two halves on one causal LM: the LoRA context assessor and the frozen base LM.

Conflict-Aware Soft Prompting (CARE, EMNLP 2025): the *assessor* is the base LM with a LoRA
adapter switched on. It reads the context, chunk by chunk (at most `chunk_tokens` tokens),
each chunk followed by `memory_tokens` learnable embeddings. Its last-layer hidden states at
those memory positions go through a projector (Linear, GELU, Linear; hidden to hidden), and
the result is the soft prompt. The *base LM* is the same network with the adapter switched
off. It gets the soft prompt in place of placeholder positions in its prompt and never sees
the passage's tokens.

Losses:
- stage 1 (`reconstruction_loss`): regenerate the passage from its soft prompt;
- stage 2 (`conflict_loss`): LM loss on the answer plus ``lam * KL(student || teacher)``,
  where the teacher is the base LM given the raw passage (grounded) or no context
  (adversarial), as decided per example by the data builder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from ragarbiter.errors import ConfigError, InvalidInputError, ShapeError

from .config import CareConfig

logger = logging.getLogger(__name__)

RECONSTRUCT_INSTRUCTIONS = (
    "Repeat the context word for word:",
    "Write out the passage you were given:",
    "Reproduce the document exactly:",
    "Copy the text above:",
)


class CareModel(nn.Module):
    """The assessor (base + LoRA + memory embeddings + projector) and the base LM, sharing weights."""

    def __init__(self, base_model, tokenizer, config: CareConfig | None = None) -> None:
        super().__init__()
        from ragarbiter.training import LoraSettings, apply_lora

        self.config = config or CareConfig()
        self.tokenizer = tokenizer
        hidden = base_model.config.hidden_size
        self.lm = apply_lora(
            base_model,
            LoraSettings(
                r=self.config.lora_r,
                alpha=self.config.lora_alpha,
                dropout=0.0,
                target_modules=self.config.target_modules,
            ),
        )
        embed = self.lm.get_input_embeddings().weight
        generator = torch.Generator().manual_seed(0)
        init = torch.randn(self.config.memory_tokens, hidden, generator=generator) * embed.detach().float().std().cpu()
        self.memory = nn.Parameter(init.to(device=embed.device, dtype=embed.dtype) + embed.detach().mean(0))
        self.projector = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden)).to(
            device=embed.device, dtype=embed.dtype
        )
        # peft injects the LoRA layers into `base_model` itself, so whoever else holds that model
        # would run it with the adapter on. It is off except inside the assessor pass.
        self._set_adapter(False)

    # -- the assessor pass (adapter on) -------------------------------------------------------------
    def chunks(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of every passage, cut into chunks of at most `chunk_tokens`."""
        out = []
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise InvalidInputError(f"CARE passage #{i} is empty ({text!r}); drop empty passages before encoding.")
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            size = self.config.chunk_tokens
            out += [ids[j : j + size] for j in range(0, len(ids), size)]
        return out

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """The soft prompt for `texts`: (n_chunks * memory_tokens, hidden), chunk memories concatenated."""
        if not texts:
            raise InvalidInputError("CARE needs at least one passage to encode.")
        return self.encode_chunks(self.chunks(texts))

    def encode_chunks(self, chunks: Sequence[Sequence[int]]) -> torch.Tensor:
        k = self.config.memory_tokens
        embed = self.lm.get_input_embeddings()
        device = embed.weight.device
        width = max(len(c) for c in chunks) + k
        rows, mask, where = [], [], []
        for chunk in chunks:
            tokens = embed(torch.tensor(list(chunk), device=device))  # (len, H)
            pad = embed.weight.new_zeros(width - len(chunk) - k, tokens.shape[1])
            rows.append(torch.cat([tokens, self.memory, pad]))  # memories right after the chunk
            mask.append([1] * (len(chunk) + k) + [0] * (width - len(chunk) - k))
            where.append(len(chunk))
        self._set_adapter(True)
        try:
            out = self.lm(
                inputs_embeds=torch.stack(rows),
                attention_mask=torch.tensor(mask, device=device),
                output_hidden_states=True,
                logits_to_keep=1,
            )
        finally:
            self._set_adapter(False)
        last = out.hidden_states[-1]  # (n_chunks, width, H)
        memories = torch.stack([last[i, s : s + k] for i, s in enumerate(where)])  # (n_chunks, K, H)
        return self.projector(memories).reshape(-1, last.shape[-1])

    # -- the base pass (adapter off) ------------------------------------------------------------------
    def base_embeds(
        self, prefix_ids: Sequence[int], soft: torch.Tensor | None, suffix_ids: Sequence[int]
    ) -> torch.Tensor:
        """(1, L, H) input embeddings: prefix tokens, the soft prompt in the placeholder slots, suffix tokens."""
        embed = self.lm.get_input_embeddings()
        device = embed.weight.device
        parts = [embed(torch.tensor(list(prefix_ids), device=device, dtype=torch.long))]
        if soft is not None:
            if soft.dim() != 2 or soft.shape[1] != embed.weight.shape[1]:
                msg = (
                    f"soft prompt must have shape (slots, {embed.weight.shape[1]}), got {tuple(soft.shape)}; "
                    f"build it with CareModel.encode."
                )
                raise ShapeError(msg)
            parts.append(soft.to(embed.weight.dtype))
        parts.append(embed(torch.tensor(list(suffix_ids), device=device, dtype=torch.long)))
        return torch.cat(parts)[None]

    def base_logits(self, embeds: torch.Tensor) -> torch.Tensor:
        self._set_adapter(False)
        return self.lm(inputs_embeds=embeds).logits

    @torch.no_grad()
    def generate(
        self, prefix_ids: Sequence[int], soft: torch.Tensor | None, suffix_ids: Sequence[int], max_new_tokens: int = 32
    ) -> list[int]:
        """Greedy decoding by the base LM (adapter off) from the soft-prompted input."""
        tok = self.tokenizer
        embeds = self.base_embeds(prefix_ids, soft, suffix_ids)
        self._set_adapter(False)
        out = self.lm.generate(
            inputs_embeds=embeds,
            attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            eos_token_id=tok.eos_token_id,
        )
        return out[0].tolist()

    def _set_adapter(self, enabled: bool) -> None:
        """Switch the LoRA layers on (assessor pass only) or off (base LM, and the rest of the time).

        peft's `disable_adapter_layers()` also sets `requires_grad=False` on the LoRA weights, which
        would hide them from an optimizer built while they are off; the flag alone is flipped here.
        """
        for layer in self._lora_layers():
            layer._disable_adapters = not enabled

    def _lora_layers(self) -> list:
        layers = self.__dict__.get("_lora_cache")
        if layers is None:
            from peft.tuners.lora import LoraLayer

            layers = self.__dict__["_lora_cache"] = [m for m in self.lm.modules() if isinstance(m, LoraLayer)]
            if not layers:
                raise ConfigError("CARE found no LoRA layer in the model; check CareConfig.target_modules.")
        return layers

    @property
    def adapter_enabled(self) -> bool:
        return not self._lora_layers()[0].disable_adapters

    # -- losses -----------------------------------------------------------------------------------------
    def reconstruction_loss(self, text: str, instruction: str = RECONSTRUCT_INSTRUCTIONS[0]) -> torch.Tensor:
        """Stage 1: the base LM regenerates `text` from its soft prompt (loss on the passage tokens)."""
        tok = self.tokenizer
        soft = self.encode([text])
        prefix = self._bos() + tok(instruction + " ", add_special_tokens=False)["input_ids"]
        target = tok(" " + text, add_special_tokens=False)["input_ids"]
        logits = self.base_logits(self.base_embeds(prefix, soft, target))[0]  # (L, V)
        start = len(prefix) + soft.shape[0]
        return nn.functional.cross_entropy(logits[start - 1 : -1].float(), torch.tensor(target, device=logits.device))

    def conflict_loss(
        self, question: str, passage: str, answer: str, teacher_passage: str | None, lam: float = 2.0
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Stage 2: LM loss on `answer` plus ``lam * KL(student || teacher)`` over the answer tokens.

        The student is the base LM with the soft prompt of `passage`; the teacher is the base LM
        with `teacher_passage` as raw text (grounded), or with no context when it is None
        (adversarial: the base LM already knows the answer).
        """
        tok = self.tokenizer
        soft = self.encode([passage])
        prefix, suffix = self.prompt_ids(question)
        target = tok(" " + answer, add_special_tokens=False)["input_ids"]
        student = self.base_logits(self.base_embeds(prefix, soft, suffix + target))[0]
        n = len(target)
        student = student[-n - 1 : -1].float()  # (n, V) the positions that predict the answer
        with torch.no_grad():
            if teacher_passage is None:  # the base LM's real closed-book prompt
                closed_prefix, closed_suffix = self.closed_book_ids(question)
                embeds = self.base_embeds(closed_prefix, None, closed_suffix + target)
            else:
                gap = "" if self.config.context_prefix[-1:].isspace() else " "
                context = tok(gap + teacher_passage, add_special_tokens=False)["input_ids"]
                embeds = self.base_embeds(prefix + context, None, suffix + target)
            teacher = self.base_logits(embeds)[0][-n - 1 : -1].float()
        labels = torch.tensor(target, device=student.device)
        lm = nn.functional.cross_entropy(student, labels)
        log_s, log_t = student.log_softmax(-1), teacher.log_softmax(-1)
        kl = (log_s.exp() * (log_s - log_t)).sum(-1).mean()  # KL(student || teacher)
        return lm + lam * kl, {"lm": float(lm.detach()), "kl": float(kl.detach())}

    def prompt_ids(self, question: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the context slot of the base LM's prompt."""
        tok, cfg = self.tokenizer, self.config
        prefix = self._bos() + tok(cfg.context_prefix, add_special_tokens=False)["input_ids"]
        suffix = tok(cfg.question_template.format(question=question), add_special_tokens=False)["input_ids"]
        return prefix, suffix

    def closed_book_ids(self, question: str) -> tuple[list[int], list[int]]:
        """The prompt without any context slot: the question template alone, leading newlines dropped."""
        text = self.config.question_template.format(question=question).lstrip("\n")
        return self._bos(), self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def answer(self, question: str, soft: torch.Tensor | None, max_new_tokens: int = 32) -> str:
        """The base LM's answer (first line) given the soft prompt, or closed-book (no context slot) with None."""
        prefix, suffix = self.prompt_ids(question) if soft is not None else self.closed_book_ids(question)
        ids = self.generate(prefix, soft, suffix, max_new_tokens=max_new_tokens)
        return self.tokenizer.decode(ids, skip_special_tokens=True).split("\n")[0].strip()

    def _bos(self) -> list[int]:
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return [bos] if bos is not None else []

    # -- save / load ------------------------------------------------------------------------------------
    def save(self, folder, base_name: str, manifest_extra: dict | None = None) -> None:
        """The peft adapter, memory and projector in safetensors, and a manifest naming the base model."""
        import json
        from pathlib import Path

        from ragarbiter.training import save_adapter

        heads = {"memory": self.memory, **{f"projector.{k}": v for k, v in self.projector.state_dict().items()}}
        save_adapter(folder, self.lm, heads, base_name)
        fingerprint = base_fingerprint(self.lm.get_base_model())
        meta = {
            "method": "care",
            "base_model": base_name,
            "base_fingerprint": fingerprint,
            "care": self.config.to_dict(),
            **(manifest_extra or {}),
        }
        (Path(folder) / "care.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder, base_model, tokenizer) -> CareModel:
        """Rebuild a saved CARE assessor on `base_model`; a different base model is refused."""
        import json
        from pathlib import Path

        from ragarbiter.errors import ModelNotFoundError
        from ragarbiter.training import check_adapter_folder, load_heads

        folder = Path(folder).expanduser()
        meta_path = folder / "care.json"
        if not meta_path.is_file():
            raise ModelNotFoundError(
                f"{folder} holds no CARE assessor (no care.json). Train one with `ragarbiter train care`."
            )
        check_adapter_folder(folder)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        found = base_fingerprint(base_model)
        if found != meta["base_fingerprint"]:
            msg = (
                f"The CARE assessor in {folder} was trained on base model {meta['base_model']!r} "
                f"({meta['base_fingerprint']}), but the model given is {found}. Load the same base model."
            )
            raise ConfigError(msg)
        config = CareConfig(**{**meta["care"], "target_modules": tuple(meta["care"]["target_modules"])})
        model = cls(base_model, tokenizer, config)
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model.lm, load_file(str(folder / "adapter_model.safetensors")))
        heads = load_heads(folder)
        with torch.no_grad():
            model.memory.copy_(heads["memory"])
            model.projector.load_state_dict(
                {k.removeprefix("projector."): v for k, v in heads.items() if k.startswith("projector.")}
            )
        return model


def base_fingerprint(model) -> str:
    """Architecture and a hash of the embedding matrix: enough to tell two base models apart."""
    import hashlib

    config = model.config
    weight = model.get_input_embeddings().weight.detach().float().cpu().contiguous()
    digest = hashlib.sha256(weight.numpy().tobytes()).hexdigest()[:16]
    return (
        f"{type(model).__name__}(layers={config.num_hidden_layers}, hidden={config.hidden_size}, "
        f"vocab={config.vocab_size}, embed_sha256={digest})"
    )
