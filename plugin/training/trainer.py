"""`Trainer`: the project's one training loop (accelerate for devices and processes).

A task hands it a model whose `forward(batch)` returns a dict with a scalar `loss` (and,
in eval mode, per-example tensors for its metrics), the training and held-out examples,
a `collate` function and a `metrics` function. The trainer adds everything else:
seeded shuffling sharded across processes, gradient accumulation and clipping, a warmup
+ linear-decay schedule, progress bars, periodic checkpoints with exact `resume`,
held-out evaluation, and the adapter folder with its manifest.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragarbiter.errors import InvalidInputError, require

from .config import TrainConfig
from .manifest import build_manifest, describe_files, write_manifest

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
Batch = Mapping[str, Any]


@dataclass
class TrainState:
    """What a checkpoint must restore besides the weights and the optimizer."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Train `model` on `train_data`; evaluate on `eval_data`; save adapter + manifest.

    `model.save_adapter(folder) -> list[str]` writes the trained files at the end.
    `metrics(outputs)` gets the eval outputs (numpy arrays, concatenated over batches)
    and returns a dict of floats.
    """

    def __init__(
        self,
        model,
        config: TrainConfig,
        *,
        train_data: Sequence[Any],
        collate: Callable[[list], Batch],
        eval_data: Sequence[Any] = (),
        metrics: Callable[[dict], dict[str, float]] | None = None,
        task: str = "task",
        base_model: Mapping[str, Any] | None = None,
        data_files: Sequence[str | Path] = (),
        settings: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """`extra`: more top-level manifest entries (how the data was built, which questions it holds)."""
        if not len(train_data):
            msg = f"{task}: no training examples were built. Check the --data files (format and content)."
            raise InvalidInputError(msg)
        self.model = model
        self.config = config
        self.train_data = train_data
        self.eval_data = eval_data
        self.collate = collate
        self.metrics = metrics
        self.task = task
        self.base_model = dict(base_model or {})
        self.data = describe_files(data_files)
        self.settings = dict(settings or {})
        self.extra = dict(extra or {})
        self.out_dir = Path(config.out_dir)

    # -- schedule ---------------------------------------------------------------------
    def _plan(self, world: int) -> tuple[int, int]:
        """(micro-batches per process per epoch, total optimizer steps)."""
        cfg = self.config
        micro = len(self.train_data) // (cfg.batch_size * world)
        if micro < cfg.grad_accum:
            msg = (
                f"{self.task}: {len(self.train_data)} training examples are too few for batch_size "
                f"{cfg.batch_size} x {world} processes x grad_accum {cfg.grad_accum}. Lower them or add data."
            )
            raise InvalidInputError(msg)
        steps_per_epoch = micro // cfg.grad_accum
        total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        return steps_per_epoch * cfg.grad_accum, total

    def _epoch_batches(self, epoch: int, rank: int, world: int, micro: int) -> list[list[int]]:
        """This process's micro-batches for `epoch`: a seeded permutation, interleaved across ranks."""
        import torch

        bsz = self.config.batch_size
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train_data), generator=gen).tolist()
        return [order[(b * world + rank) * bsz : (b * world + rank + 1) * bsz] for b in range(micro)]

    @staticmethod
    def _schedule(total: int, warmup: int) -> Callable[[int], float]:
        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / max(1, warmup)
            return max(0.0, (total - step) / max(1, total - warmup))

        return factor

    # -- the loop ---------------------------------------------------------------------
    def fit(self, *, resume: bool = False) -> dict[str, Any] | None:
        """Train to the configured length; return the manifest (on the main process)."""
        import torch
        from tqdm.auto import tqdm

        accelerate = require("accelerate", "train", "training")
        cfg = self.config
        cpu = cfg.cpu or not torch.cuda.is_available()  # a CPU-only multi-process launch needs cpu=True (gloo)
        from accelerate.state import AcceleratorState

        state_now = AcceleratorState._shared_state
        if state_now and state_now.get("_mixed_precision", cfg.mixed_precision) != cfg.mixed_precision:
            # An earlier run in this process fixed another precision; the process state is
            # kept (it holds the distributed setup), only the precision part is rebuilt.
            AcceleratorState._reset_state(reset_partial_state=False)
        acc = accelerate.Accelerator(
            cpu=cpu, mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum
        )
        accelerate.utils.set_seed(cfg.seed)
        micro, total = self._plan(acc.num_processes)
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._schedule(total, int(cfg.warmup_ratio * total)))
        model, optimizer = acc.prepare(self.model, optimizer)
        state = self._resume(acc, optimizer, scheduler) if resume else TrainState()
        start_time = time.perf_counter()
        bar = tqdm(
            total=total,
            initial=state.step,
            desc=f"train {self.task}",
            unit="step",
            disable=not (cfg.progress and acc.is_main_process),
        )
        model.train()
        while state.step < total:
            epoch, done = divmod(state.step * cfg.grad_accum, micro)
            for indices in self._epoch_batches(epoch, acc.process_index, acc.num_processes, micro)[done:]:
                batch = self._to_device(self.collate([self.train_data[i] for i in indices]), acc.device)
                with acc.accumulate(model):
                    loss = model(batch)["loss"]
                    acc.backward(loss)
                    if acc.sync_gradients:
                        acc.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                if not acc.sync_gradients:
                    continue
                scheduler.step()
                state.step += 1
                state.losses.append(round(float(loss.detach()), 5))
                bar.update(1)
                bar.set_postfix(loss=f"{sum(state.losses[-20:]) / len(state.losses[-20:]):.4f}")
                if cfg.eval_every and state.step % cfg.eval_every == 0 and state.step < total:
                    self._evaluate(acc, model, state)
                if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and state.step < total:
                    self._checkpoint(acc, model, optimizer, scheduler, state)
                if state.step >= total:
                    break
        bar.close()
        metrics = self._evaluate(acc, model, state)
        manifest = self._finish(acc, model, state, metrics, time.perf_counter() - start_time, total)
        acc.wait_for_everyone()
        acc.end_training()
        return manifest

    @staticmethod
    def _to_device(batch: Batch, device) -> dict[str, Any]:
        return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}

    # -- evaluation -------------------------------------------------------------------
    def _evaluate(self, acc, model, state: TrainState) -> dict[str, float]:
        """Held-out metrics, computed on the main process over the whole eval split."""
        metrics: dict[str, float] = {}
        if len(self.eval_data) and acc.is_main_process:
            metrics = self.evaluate(acc.unwrap_model(model), acc.device)
            metrics["step"] = state.step
            state.evals.append(metrics)
            logger.info("%s eval at step %d: %s", self.task, state.step, json.dumps(metrics))
        acc.wait_for_everyone()
        model.train()
        return metrics

    def evaluate(self, model, device="cpu") -> dict[str, float]:
        import numpy as np
        import torch

        model.eval()
        losses, outputs = [], {}
        bsz = self.config.batch_size
        with torch.no_grad():
            for i in range(0, len(self.eval_data), bsz):
                batch = self._to_device(self.collate(list(self.eval_data[i : i + bsz])), device)
                out = model(batch)
                losses.append(float(out["loss"]))
                for key, value in out.items():
                    if key != "loss" and hasattr(value, "detach"):
                        outputs.setdefault(key, []).append(value.detach().float().cpu().numpy())
        arrays = {k: np.concatenate(v) for k, v in outputs.items()}
        metrics = {"eval_loss": round(float(np.mean(losses)), 5)}
        if self.metrics is not None:
            metrics.update({k: round(float(v), 5) for k, v in self.metrics(arrays).items()})
        return metrics

    # -- checkpoints ------------------------------------------------------------------
    def _checkpoint(self, acc, model, optimizer, scheduler, state: TrainState) -> None:
        import torch
        from safetensors.torch import save_file

        folder = self.out_dir / CHECKPOINTS / f"step-{state.step:07d}"
        if acc.is_main_process:
            tmp = folder.with_name(folder.name + ".tmp")
            tmp.mkdir(parents=True, exist_ok=True)
            trainable = {
                n: p.detach().cpu().contiguous()
                for n, p in acc.unwrap_model(model).named_parameters()
                if p.requires_grad
            }
            save_file(trainable, str(tmp / "trainable.safetensors"))
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optim.pt")
            (tmp / "state.json").write_text(json.dumps(state.__dict__), encoding="utf-8")
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)  # a checkpoint is complete or absent, never half-written
            for old in sorted((self.out_dir / CHECKPOINTS).glob("step-*[0-9]"))[: -self.config.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
            logger.info("checkpoint written: %s", folder)
        acc.wait_for_everyone()

    def _resume(self, acc, optimizer, scheduler) -> TrainState:
        import torch
        from safetensors.torch import load_file

        found = sorted((self.out_dir / CHECKPOINTS).glob("step-*[0-9]"))
        if not found:
            logger.warning("--resume: no checkpoint under %s; starting from step 0", self.out_dir / CHECKPOINTS)
            return TrainState()
        folder = found[-1]
        trainable = load_file(str(folder / "trainable.safetensors"))
        params = dict(acc.unwrap_model(self.model).named_parameters())
        unknown = sorted(set(trainable) - set(params))
        if unknown:
            msg = (
                f"Checkpoint {folder} holds tensors this model lacks ({unknown[:3]}...). "
                f"Resume with the same task and settings, or train into a new --out folder."
            )
            raise InvalidInputError(msg)
        with torch.no_grad():
            for name, tensor in trainable.items():
                params[name].copy_(tensor)
        optim = torch.load(folder / "optim.pt", map_location="cpu", weights_only=False)
        optimizer.load_state_dict(optim["optimizer"])
        scheduler.load_state_dict(optim["scheduler"])
        state = TrainState(**json.loads((folder / "state.json").read_text(encoding="utf-8")))
        logger.info("resumed from %s (step %d)", folder, state.step)
        return state

    # -- the result -------------------------------------------------------------------
    def _finish(self, acc, model, state: TrainState, metrics: dict, seconds: float, total: int) -> dict | None:
        if not acc.is_main_process:
            return None
        files = acc.unwrap_model(model).save_adapter(self.out_dir)
        run = {
            "steps": state.step,
            "total_steps": total,
            "train_examples": len(self.train_data),
            "eval_examples": len(self.eval_data),
            "processes": acc.num_processes,
            "device": str(acc.device),
            "seconds_this_session": round(seconds, 1),
            "initial_train_loss": state.losses[0] if state.losses else None,
            "final_train_loss": state.losses[-1] if state.losses else None,
            "eval_history": state.evals,
        }
        manifest = build_manifest(
            task=self.task,
            base_model=self.base_model,
            data=self.data,
            hyperparameters={**self.config.hyperparameters(), **self.settings},
            metrics=metrics,
            run=run,
            files=[*files, "manifest.json"],
        )
        manifest.update({k: v for k, v in self.extra.items() if k not in manifest})
        path = write_manifest(self.out_dir, manifest)
        logger.info("adapter and manifest written to %s", path.parent)
        return manifest
