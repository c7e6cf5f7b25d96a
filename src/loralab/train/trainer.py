"""The training loop: a recipe in, a run folder out.

One optimiser step s (0-based) takes the micro-batches ``BatchPlan.step(s)``, sums each
one's token losses, divides by the step's total number of labelled tokens (so k micro-batches
equal one batch k times larger), back-propagates, clips the gradient norm, sets every
parameter group's lr to its base lr × ``lr_multiplier(s)`` and steps the optimiser.

Checkpoint ``step-N`` holds the state after N steps: trainable weights, optimiser, RNG states.
The data position and the learning rate follow from N, so a resumed run repeats exactly
what the uninterrupted run would have done. Ctrl-C writes a checkpoint and stops; a
non-finite loss or gradient stops the run and keeps the last good checkpoint.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from loralab.errors import ConfigError, LoraLabError
from loralab.models.precision import resolve_precision
from loralab.train import checkpoint as ckpt
from loralab.train.batches import BatchPlan
from loralab.train.loss import labelled_tokens, loss_sum
from loralab.train.memory import peak_memory_mb
from loralab.train.model_setup import ADAPTER, autocast, base_model, make_trainable, trainable_named_parameters
from loralab.train.recipe import Recipe, load_recipe
from loralab.train.run_folder import RunFolder
from loralab.train.schedules import lr_multiplier


class TrainingDiverged(LoraLabError):
    """The loss or the gradient became NaN or infinite."""


@dataclass
class TrainResult:
    """What a run did: where it wrote, how many steps, and its evaluations (task results)."""

    run_dir: Path
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    eval_before: list = field(default_factory=list)
    eval_final: list = field(default_factory=list)


def train(recipe: Recipe, *, resume: bool = False, force: bool = False, progress: bool = True) -> TrainResult:
    """Run ``recipe`` into ``recipe.run_dir`` (``resume``: continue from its last checkpoint)."""
    run = RunFolder(recipe.run_dir)
    if resume:
        if ckpt.latest_checkpoint(run.checkpoints) is None:
            raise ConfigError(f"cannot resume {run.path}: it has no complete checkpoint")
    elif run.recipe_file.exists():
        if not force:
            raise ConfigError(f"run folder {run.path} already exists: resume it with --resume {run.path}, "
                              f"choose another name (name=...) or replace it with --force")  # fmt: skip
        shutil.rmtree(run.path)
    return Trainer(recipe, run, progress).run(resume)


def resume(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = (), progress: bool = True) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest checkpoint (overrides may e.g. raise max_steps)."""
    run = RunFolder.existing(run_dir)
    recipe = load_recipe(run.recipe_file, overrides)
    recipe = replace(recipe, output_dir=str(run.path.parent), name=run.path.name)
    return train(recipe, resume=True, progress=progress)


class Trainer:
    def __init__(self, recipe: Recipe, run: RunFolder, progress: bool) -> None:
        self.recipe = recipe
        self.run_folder = run
        self.progress = progress

    # -- setup -----------------------------------------------------------------------------
    def _setup(self) -> None:
        from loralab.data import PaddingCollator
        from loralab.train.data_setup import training_set
        from loralab.train.optim import build_optimizer

        recipe = self.recipe
        _seed_everything(recipe.train.seed)
        self.model, self.tokenizer = base_model(recipe)
        self.device = next(self.model.parameters()).device
        self.precision = resolve_precision(recipe.train.precision, self.device)
        self.eval_precision = resolve_precision(recipe.eval.precision, self.device)
        self.dataset = training_set(recipe.data, self.tokenizer, recipe.train.seed)
        self.collate = PaddingCollator.for_tokenizer(self.tokenizer)
        self.reference = self._reference_model()
        make_trainable(self.model, recipe)
        self.trainable = trainable_named_parameters(self.model)
        self.optimizer = build_optimizer(self.model, recipe.optimizer)
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.plan = BatchPlan(len(self.dataset), recipe.train.micro_batch_size, recipe.train.grad_accum, recipe.train.seed)
        self.total_steps = self.plan.total_steps(recipe.train.epochs, recipe.train.max_steps)
        self.schedule = lr_multiplier(recipe.train.schedule, self.total_steps, recipe.train.warmup_steps, recipe.train.min_lr_ratio)

    def _reference_model(self):
        """A frozen copy of the base for KL when there is no adapter to switch off (full fine-tuning)."""
        from loralab.eval.tasks.spec import parse_task

        kinds = {parse_task(t).kind for t in self.recipe.eval.tasks}
        if self.recipe.uses_adapter or not kinds & {"source-kl", "kl"}:
            return None
        reference, _ = base_model(self.recipe)
        return reference.requires_grad_(False).eval()

    # -- the run -----------------------------------------------------------------------------
    def run(self, resume: bool) -> TrainResult:
        started = time.perf_counter()
        self._setup()
        run, recipe = self.run_folder, self.recipe
        run.path.mkdir(parents=True, exist_ok=True)
        run.recipe_file.write_text(recipe.to_yaml(), encoding="utf-8")
        from loralab.lora.report import trainable_parameters

        counts = trainable_parameters(self.model, verbose=False)
        self.counts = counts
        self.weight_memory = None
        if recipe.method == "qlora":
            from loralab.quant import weight_memory

            self.weight_memory = weight_memory(self.model)
            print(f"loralab: {self.weight_memory}")
        train_precision = self.precision.describe(recipe.train.precision)
        eval_precision = self.eval_precision.describe(recipe.eval.precision)
        print(f"loralab: training and evaluation in {train_precision}" if train_precision == eval_precision
              else f"loralab: training in {train_precision}; evaluation in {eval_precision}")  # fmt: skip
        print(f"loralab: {recipe.method} on {recipe.model.name}: {counts}\nloralab: data: {self.dataset.stats.summary()}\n"
              f"loralab: {self.total_steps} steps of {recipe.train.micro_batch_size}×{recipe.train.grad_accum} examples → {run.path}")  # fmt: skip

        start = 0
        before: list = []
        if resume:
            start = self._restore(ckpt.latest_checkpoint(run.checkpoints))
            before = _read_results(run.eval_file("before"))
        else:
            if recipe.eval.tasks and recipe.eval.before:
                before = self._evaluate("before")
        losses = [r["loss"] for r in run.read_metrics()]
        last_saved = start
        step = start
        try:
            step = self._loop(start, losses)
        except KeyboardInterrupt:
            step = self.completed
            if step > last_saved:
                path = self._checkpoint(step)
                print(f"\nloralab: interrupted after step {step}; checkpoint {path.name} saved. "
                      f"Continue with: loralab train --resume {run.path}")  # fmt: skip
            else:
                print(f"\nloralab: interrupted; the newest checkpoint is kept. Continue with: loralab train --resume {run.path}")
            raise
        if step > _checkpoint_step(ckpt.latest_checkpoint(run.checkpoints)):
            self._checkpoint(step)
        self._save_final()
        final = self._evaluate("final") if recipe.eval.tasks else []
        before = self._complete_before(before, final) if before else before
        seconds = time.perf_counter() - started
        result = TrainResult(run.path, step, seconds, losses, before, final)
        from loralab.train.report import finish_report

        finish_report(self, result)
        return result

    def _loop(self, start: int, losses: list[float]) -> int:
        from tqdm.auto import tqdm

        recipe, run = self.recipe, self.run_folder
        self.completed = start
        self.model.train()
        bar = tqdm(total=self.total_steps, initial=start, desc=f"train {recipe.name}", disable=not self.progress, unit="step")
        try:
            for step in range(start, self.total_steps):
                record = self._step(step)
                losses.append(record["loss"])
                run.append_metrics(record)
                self.completed = step + 1
                bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}", tok_s=f"{record['tokens_per_s']:.0f}")
                bar.update(1)
                done = step + 1
                if recipe.eval.tasks and recipe.eval.every and done % recipe.eval.every == 0 and done < self.total_steps:
                    self._evaluate(f"step-{done:08d}")
                    self.model.train()
                if recipe.train.checkpoint_every and done % recipe.train.checkpoint_every == 0:
                    self._checkpoint(done)
        finally:
            bar.close()
        return self.total_steps

    def _step(self, step: int) -> dict[str, Any]:
        recipe = self.recipe
        begin = time.perf_counter()
        batches = [self.collate([self.dataset[i] for i in indices]) for indices in self.plan.step(step)]
        total_tokens = sum(labelled_tokens(b) for b in batches)
        if total_tokens == 0:
            raise TrainingDiverged(f"step {step}: no labelled token in the batch (are all responses truncated away?)")
        loss_total = 0.0
        seen_tokens = 0
        for batch in batches:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            seen_tokens += int(batch["attention_mask"].sum())
            with autocast(self.precision.name, self.device):
                summed, _ = loss_sum(self.model, batch)
            (summed / total_tokens).backward()
            loss_total += float(summed.detach())
        loss = loss_total / total_tokens
        params = [p for _, p in self.trainable]
        max_norm = recipe.train.max_grad_norm if recipe.train.max_grad_norm > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            latest = ckpt.latest_checkpoint(self.run_folder.checkpoints)
            kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint had been written yet"
            raise TrainingDiverged(f"step {step + 1}: the {'loss' if not math.isfinite(loss) else 'gradient norm'} is "
                                   f"{loss if not math.isfinite(loss) else grad_norm}; stopped ({kept}). "
                                   f"Try a lower optimizer.lr or train.max_grad_norm.")  # fmt: skip
        multiplier = self.schedule(step)
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * multiplier
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - begin
        return {
            "step": step + 1,
            "epoch": round(self.plan.epoch_of(step + 1), 4),
            "loss": loss,
            "lr": self.recipe.optimizer.lr * multiplier,
            "grad_norm": grad_norm,
            "tokens": seen_tokens,
            "labelled_tokens": total_tokens,
            "tokens_per_s": seen_tokens / seconds,
            "seconds": seconds,
            "peak_memory_mb": round(peak_memory_mb(self.device), 1),
        }

    # -- checkpoints -------------------------------------------------------------------------
    def _checkpoint(self, step: int) -> Path:
        state = {
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "rng": _rng_state(),
            "identity": self._identity(),
        }
        tensors = {name: p.detach() for name, p in self.trainable}
        write_extra = None
        if self.recipe.uses_adapter:
            from loralab.lora.io import save_adapter

            write_extra = lambda folder: save_adapter(self.model, folder / "adapter", ADAPTER)  # noqa: E731
        return ckpt.save_checkpoint(self.run_folder.checkpoints, step, tensors, state, self.recipe.train.keep_checkpoints, write_extra)

    def _identity(self) -> dict[str, Any]:
        """What a checkpoint must agree on with the recipe that resumes it."""
        quant = self.recipe.to_dict()["quant"] if self.recipe.method == "qlora" else None
        return {"method": self.recipe.method, "model": self.recipe.model.name, "quant": repr(quant)}

    def _restore(self, path: Path) -> int:
        step, tensors, state = ckpt.load_checkpoint(path)
        found, expected = state.get("identity", {}), self._identity()
        for key in expected:
            if found.get(key) != expected[key]:
                raise ConfigError(f"checkpoint {path} was written with {key} = {found.get(key)}, but the recipe now says "
                                  f"{expected[key]}; resume with the recipe it was trained with")  # fmt: skip
        names = {name for name, _ in self.trainable}
        if set(tensors) != names:
            raise ConfigError(f"checkpoint {path} does not fit this model: it holds {len(tensors)} tensors, "
                              f"the model trains {len(names)}")  # fmt: skip
        with torch.no_grad():
            for name, param in self.trainable:
                param.copy_(tensors[name])
        self.optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        self.run_folder.keep_metrics_until(step)
        print(f"loralab: resumed from {path} (step {step} of {self.total_steps})")
        return step

    # -- outputs -------------------------------------------------------------------------------
    def _save_final(self) -> None:
        run = self.run_folder
        if self.recipe.uses_adapter:
            from loralab.lora.io import save_adapter

            save_adapter(self.model, run.adapter, ADAPTER)
        else:
            from loralab.models.cache import atomic_save

            def save(folder: Path) -> None:
                self.model.save_pretrained(folder)
                self.tokenizer.save_pretrained(folder)

            atomic_save(save, run.model)

    def _evaluate(self, label: str) -> list:
        from loralab.eval import evaluate
        from loralab.eval.report import results_table, to_json
        from loralab.eval.result import TaskResult
        from loralab.eval.evaluate import twin_of
        from loralab.eval.tasks.registry import KINDS
        from loralab.eval.tasks.spec import parse_task

        config = self.recipe.eval
        tasks = list(config.tasks)
        kl_tasks = [t for t in tasks if KINDS[parse_task(t).kind].compares_to_base]
        skipped: list[str] = []
        if label == "before" and self.recipe.uses_adapter:
            # Before training an adapter is exactly zero (B·A = 0): KL to the base is exactly 0, and the base's
            # perplexity on the KL text comes with the final KL pass, whose base side is this very model.
            skipped = kl_tasks + [t for t in tasks if t in {twin_of(k) for k in kl_tasks}]
        rng_devices = [self.device] if self.device.type == "cuda" else []
        results = []
        with torch.random.fork_rng(devices=rng_devices), autocast(self.eval_precision.name, self.device):
            if len(skipped) < len(tasks):
                results = evaluate(self.model, self.tokenizer, [t for t in tasks if t not in skipped], limit=config.limit,
                                   seed=config.seed, reference=self.reference, progress=self.progress, **config.settings)  # fmt: skip
        results += [TaskResult(t, "kl_to_base", 0.0, 0.0, 0, 0.0, "source", False, {"exact": "the adapter starts at B·A = 0"})
                    for t in kl_tasks if t in skipped]  # fmt: skip
        self.run_folder.eval_dir.mkdir(parents=True, exist_ok=True)
        to_json(results, self.run_folder.eval_file(label), variant=label)
        deferred = [t for t in skipped if t not in kl_tasks]
        print(f"\nevaluation ({label}):\n{results_table(results)}"
              + (f"\n({', '.join(deferred)} of the base: with the final KL pass)" if deferred else ""))  # fmt: skip
        return results

    def _complete_before(self, before: list, final: list) -> list:
        """Add to the before-training results what the final KL pass measured on the base (its perplexity)."""
        from loralab.eval.report import to_json
        from loralab.eval.result import TaskResult

        have = {r.task for r in before}
        added = [TaskResult(**r.details["base_perplexity"]) for r in final
                 if "base_perplexity" in r.details and r.details["base_perplexity"]["task"] not in have]  # fmt: skip
        if added:
            before = before + added
            to_json(before, self.run_folder.eval_file("before"), variant="before")
        return before


def _checkpoint_step(path: Path | None) -> int:
    return int(path.name.split("-")[1]) if path is not None else 0


def _read_results(path: Path) -> list:
    import json

    from loralab.eval.result import TaskResult

    if not path.is_file():
        return []
    records = json.loads(path.read_text(encoding="utf-8"))
    fields = TaskResult.__dataclass_fields__
    return [TaskResult(**{k: v for k, v in r.items() if k in fields}) for r in records]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": _python_rng()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _python_rng() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
