"""CARE's two halves on one causal LM: the LoRA context assessor and the frozen base LM.

Conflict-Aware Soft Prompting (CARE, EMNLP 2025): the *assessor* is the base LM with a LoRA
adapter switched on. It reads the context, chunk by chunk (at most `chunk_tokens` tokens),
each chunk followed by `memory_tokens` learnable embeddings. Its last-layer hidden states at
those memory positions go through a projector (Linear, GELU, Linear; hidden to hidden), and
the result is the soft prompt. The *base LM* is the same network with the adapter switched
off. It gets the soft prompt where its answering prompt has the documents, and never sees
the passage's tokens. With a chat model that prompt is the chat template's (`ragarbiter.lm`).

Losses (batched: the base LM's rows are left-padded, so every answer ends at the last position):
- stage 1 (`reconstruction_losses`): regenerate the passage from its soft prompt;
- stage 2 (`conflict_losses`): LM loss on the answer plus ``lam * T^2 * KL(teacher || student)``
  at temperature T (the reference's `get_kl_loss`), where the teacher is the base LM given the raw
  passages (grounded) or no context (misleading and unhelpful), as the data builder decides.
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
KL_TEMPERATURE = 1.0  # the reference's `kl_temperature`


class CareModel(nn.Module):
    """The assessor (base + LoRA + memory embeddings + projector) and the base LM, sharing weights."""

    def __init__(self, base_model, tokenizer, config: CareConfig | None = None) -> None:
        super().__init__()
        from ragarbiter.lm import has_chat_template
        from ragarbiter.training import LoraSettings, apply_lora

        model_type = getattr(base_model.config, "model_type", "")
        self.config = (config or CareConfig()).resolve(model_type, has_chat_template(tokenizer))
        if self.config.prompt == "chat" and not has_chat_template(tokenizer):
            msg = "CareConfig.prompt='chat' but the tokenizer has no chat template; use prompt='plain' or 'auto'."
            raise ConfigError(msg)
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

    def encode_groups(self, groups: Sequence[Sequence[str]]) -> list[torch.Tensor]:
        """One soft prompt per group of passages, from one assessor pass over every group's chunks."""
        if any(not group for group in groups):
            raise InvalidInputError("CARE needs at least one passage per soft prompt.")
        chunked = [self.chunks(group) for group in groups]
        memories = self.encode_chunks([c for chunks in chunked for c in chunks])  # (sum chunks * K, H)
        sizes = [len(chunks) * self.config.memory_tokens for chunks in chunked]
        return list(memories.split(sizes))

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
        return self._row([prefix_ids, soft, suffix_ids])[None]

    def _row(self, parts: Sequence) -> torch.Tensor:
        """(L, H): token-id lists embedded, soft prompts (S, H) as they are, None skipped."""
        embed = self.lm.get_input_embeddings()
        width = embed.weight.shape[1]
        out = []
        for part in parts:
            if part is None:
                continue
            if isinstance(part, torch.Tensor) and part.is_floating_point():
                if part.dim() != 2 or part.shape[1] != width:
                    msg = (
                        f"soft prompt must have shape (slots, {width}), got {tuple(part.shape)}; "
                        f"build it with CareModel.encode."
                    )
                    raise ShapeError(msg)
                out.append(part.to(embed.weight.dtype))
            else:
                out.append(embed(torch.as_tensor(list(part), device=embed.weight.device, dtype=torch.long)))
        return torch.cat(out)

    def _left_padded(self, rows: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rows of (L_i, H) as one left-padded batch: embeds (B, L, H), attention mask and positions (B, L)."""
        width = max(r.shape[0] for r in rows)
        device = rows[0].device
        embeds = torch.stack([nn.functional.pad(r, (0, 0, width - r.shape[0], 0)) for r in rows])  # (B, L, H)
        mask = torch.zeros(len(rows), width, dtype=torch.long, device=device)
        for i, r in enumerate(rows):
            mask[i, width - r.shape[0] :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return {"inputs_embeds": embeds, "attention_mask": mask, "position_ids": positions}

    def base_logits(self, embeds: torch.Tensor) -> torch.Tensor:
        self._set_adapter(False)
        return self.lm(inputs_embeds=embeds).logits

    def tail_logits(self, rows: Sequence[torch.Tensor], keep: int) -> torch.Tensor:
        """(B, keep, V): the base LM's logits at the last `keep` positions of each row (left-padded batch)."""
        self._set_adapter(False)
        return self.lm(**self._left_padded(rows), logits_to_keep=keep).logits

    @torch.no_grad()
    def generate(
        self, prefix_ids: Sequence[int], soft: torch.Tensor | None, suffix_ids: Sequence[int], max_new_tokens: int = 32
    ) -> list[int]:
        """Greedy decoding by the base LM (adapter off) from the soft-prompted input."""
        return self.generate_batch([self._row([prefix_ids, soft, suffix_ids])], max_new_tokens)[0]

    @torch.no_grad()
    def generate_batch(self, rows: Sequence[torch.Tensor], max_new_tokens: int = 32) -> list[list[int]]:
        """Greedy decoding by the base LM (adapter off) from input rows (L_i, H), left-padded together."""
        tok = self.tokenizer
        config = getattr(self.lm, "generation_config", None)
        eos = getattr(config, "eos_token_id", None) or tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        inputs = self._left_padded(rows)
        del inputs["position_ids"]  # generate derives them from the attention mask, at every step
        self._set_adapter(False)
        out = self.lm.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
            eos_token_id=eos,
        )
        return [row.tolist() for row in out]

    # -- prompts ----------------------------------------------------------------------------------------
    @property
    def chat(self) -> bool:
        return self.config.prompt == "chat"

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def prompt_ids(self, question: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the context slot of the base LM's prompt."""
        if self.chat:
            from ragarbiter.lm import rag_prompt_parts

            before, after = rag_prompt_parts(self.tokenizer, question)
            return self._ids(before), self._ids(after)
        cfg = self.config
        return self._bos() + self._ids(cfg.context_prefix), self._ids(cfg.question_template.format(question=question))

    def closed_book_ids(self, question: str) -> tuple[list[int], list[int]]:
        """The prompt without any context slot (plain: the question template alone, leading newlines dropped)."""
        if self.chat:
            from ragarbiter.lm import closed_book_prompt

            return self._ids(closed_book_prompt(self.tokenizer, question)), []
        text = self.config.question_template.format(question=question).lstrip("\n")
        return self._bos(), self._ids(text)

    def context_ids(self, passages: Sequence[str]) -> list[int]:
        """The raw passages as the base LM reads them in the context slot (plain RAG, and the grounded teacher)."""
        if self.chat:
            from ragarbiter.lm import number_documents

            return self._ids(number_documents(passages))
        gap = "" if self.config.context_prefix[-1:].isspace() else " "
        return self._ids(gap + "\n".join(passages))

    def target_ids(self, answer: str) -> list[int]:
        """The answer's tokens as the base LM would write them after its prompt."""
        return self._ids(answer if self.chat else " " + answer)

    def input_row(self, question: str, soft: torch.Tensor | None = None, passages: Sequence[str] | None = None):
        """(L, H): the base LM's input for `question` with a soft prompt, raw `passages`, or neither (closed book)."""
        if soft is None and not passages:
            prefix, suffix = self.closed_book_ids(question)
            return self._row([prefix, suffix])
        prefix, suffix = self.prompt_ids(question)
        return self._row([prefix, soft if soft is not None else self.context_ids(passages), suffix])

    def answer(self, question: str, soft: torch.Tensor | None, max_new_tokens: int = 32) -> str:
        """The base LM's answer (first line) given the soft prompt, or closed-book (no context slot) with None."""
        return self.answers([question], [soft], max_new_tokens=max_new_tokens)[0]

    @torch.no_grad()
    def answers(
        self,
        questions: Sequence[str],
        softs: Sequence[torch.Tensor | None] | None = None,
        passages: Sequence[Sequence[str] | None] | None = None,
        *,
        max_new_tokens: int = 32,
        batch_size: int = 16,
    ) -> list[str]:
        """Greedy answers (first line), `batch_size` at a time: from each question's soft prompt, else its raw
        `passages` (plain RAG), else closed book."""
        softs = softs or [None] * len(questions)
        passages = passages or [None] * len(questions)
        out = []
        for i in range(0, len(questions), batch_size):
            rows = [
                self.input_row(q, s, p)
                for q, s, p in zip(*(x[i : i + batch_size] for x in (questions, softs, passages)))
            ]
            for ids in self.generate_batch(rows, max_new_tokens):
                out.append(self.tokenizer.decode(ids, skip_special_tokens=True).strip().split("\n")[0].strip())
        return out

    def _bos(self) -> list[int]:
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return [bos] if bos is not None else []

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
        """Stage 1 for one passage (see `reconstruction_losses`)."""
        return self.reconstruction_losses([text], [instruction])[0]

    def reconstruction_losses(self, texts: Sequence[str], instructions: Sequence[str]) -> torch.Tensor:
        """Stage 1: the base LM regenerates each text from its soft prompt; (B,) mean loss per passage token."""
        softs = self.encode_groups([[t] for t in texts])
        targets = [self.target_ids(t) for t in texts]
        rows = []
        for instruction, soft, target in zip(instructions, softs, targets):
            if self.chat:  # the reference's user turn (the soft prompt, the instruction); the passage answers
                from ragarbiter.lm import chat_prompt_parts

                before, after = chat_prompt_parts(self.tokenizer, "", f"\n\n{instruction}")
                rows.append(self._row([self._ids(before), soft, self._ids(after), target]))
            else:
                rows.append(self._row([self._bos() + self._ids(instruction + " "), soft, target]))
        return self._answer_nll(rows, targets)

    def _answer_nll(self, rows: Sequence[torch.Tensor], targets: Sequence[Sequence[int]]):
        """(B,) mean cross-entropy of each row's trailing target tokens (rows end with their target)."""
        logits = self._target_logits(rows, targets)
        return torch.stack(
            [
                nn.functional.cross_entropy(row, torch.tensor(list(target), device=row.device))
                for row, target in zip(logits, targets)
            ]
        )

    def _target_logits(self, rows: Sequence[torch.Tensor], targets: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """Per row, (n_i, V) float logits at the positions that predict its n_i target tokens."""
        keep = max(len(t) for t in targets) + 1
        logits = self.tail_logits(rows, keep)  # (B, keep, V)
        return [logits[i, keep - len(t) - 1 : keep - 1].float() for i, t in enumerate(targets)]

    def conflict_loss(
        self,
        question: str,
        passage: str,
        answer: str,
        teacher_passage: str | None,
        lam: float = 2.0,
        temperature: float = KL_TEMPERATURE,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Stage 2 for one example (see `conflict_losses`)."""
        teacher = None if teacher_passage is None else [teacher_passage]
        losses, parts = self.conflict_losses([(question, [passage], answer, teacher)], lam, temperature)
        return losses[0], parts

    def conflict_losses(
        self,
        examples: Sequence[tuple[str, Sequence[str], str, Sequence[str] | None]],
        lam: float = 2.0,
        temperature: float = KL_TEMPERATURE,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Stage 2: per example (question, passages, answer, teacher passages), the LM loss on `answer`
        plus ``lam * T^2 * KL(teacher || student)`` at temperature T, each averaged over the answer tokens.

        The student is the base LM with the soft prompt of `passages`; the teacher is the base LM with
        the teacher passages as raw text (grounded), or with no context when they are None (the base
        LM knows the answer and the passages mislead or do not help). Returns (B,) losses and the mean
        of each part.
        """
        if temperature <= 0:
            raise ConfigError(f"the KL temperature must be > 0, got {temperature}. The reference uses 1.0.")
        softs = self.encode_groups([list(passages) for _, passages, _, _ in examples])
        targets = [self.target_ids(answer) for _, _, answer, _ in examples]
        student_rows = [
            torch.cat([self.input_row(q, soft), self._row([t])]) for (q, *_), soft, t in zip(examples, softs, targets)
        ]
        student = self._target_logits(student_rows, targets)
        with torch.no_grad():
            teacher_rows = [
                torch.cat([self.input_row(q, None, teacher), self._row([t])])
                for (q, _, _, teacher), t in zip(examples, targets)
            ]
            teacher = self._target_logits(teacher_rows, targets)
        lm, kl = [], []
        for s, t, target in zip(student, teacher, targets):
            lm.append(nn.functional.cross_entropy(s, torch.tensor(target, device=s.device)))
            kl.append(kl_teacher_student(t, s, temperature))
        lm_t, kl_t = torch.stack(lm), torch.stack(kl)
        parts = {"lm": float(lm_t.detach().mean()), "kl": float(kl_t.detach().mean())}
        return lm_t + lam * kl_t, parts

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
        config = CareConfig.from_dict(meta["care"])
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


def kl_teacher_student(teacher: torch.Tensor, student: torch.Tensor, temperature: float = KL_TEMPERATURE):
    """``T^2 * KL(teacher || student)`` of (n, V) logits at temperature T, averaged over the n rows: the
    reference's `get_kl_loss` (``KLDivLoss(log_softmax(student / T), softmax(teacher / T)) * T^2``)."""
    log_t = (teacher / temperature).log_softmax(-1)
    log_s = (student / temperature).log_softmax(-1)
    return (log_t.exp() * (log_t - log_s)).sum(-1).mean() * temperature**2
