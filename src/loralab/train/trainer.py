"""The training loop: a recipe in, a run folder out.

The recipe's method (:mod:`loralab.train.methods`) prepares the model; optimiser step s
(0-based) collates the micro-batches ``BatchPlan.step(s)`` and hands them to a
:class:`~loralab.train.step.TrainStep` (the recipe's objective, backward, clipping, lr schedule,
optimiser step). Only the writing process (:mod:`loralab.process`) writes files and prints.

Checkpoint ``step-N`` holds the state after N steps: trainable weights, optimiser, RNG states.
The data position and the learning rate follow from N, so a resumed run repeats exactly
what the uninterrupted run would have done. Ctrl-C writes a checkpoint and stops; a
non-finite loss or gradient stops the run and keeps the last good checkpoint.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from loralab.data.dataset import TokenizedDataset
from loralab.errors import ConfigError, LoraLabError
from loralab.eval import evaluate
from loralab.eval.evaluate import twin_of
from loralab.eval.report import results_table, to_json
from loralab.eval.result import TaskResult
from loralab.eval.tasks.registry import KINDS
from loralab.eval.tasks.spec import parse_task
from loralab.lora.report import trainable_parameters
from loralab.models.precision import Precision, resolve_precision
from loralab.process import current_role, say, show_progress
from loralab.train import checkpoint as ckpt
from loralab.train.batches import BatchPlan
from loralab.train.data_setup import training_set
from loralab.train.memory import peak_memory_mb
from loralab.train.model_setup import autocast, base_model, make_trainable, trainable_named_parameters
from loralab.train.objectives import OBJECTIVES
from loralab.train.optim import build_optimizer
from loralab.train.recipe import Recipe
from loralab.train.report import RunSummary, finish_report
from loralab.train.runs import BEFORE, FINAL, RunFolder
from loralab.train.schedules import lr_multiplier
from loralab.train.step import EmptyStep, NonFiniteStep, StepResult, TrainStep


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
    recipe.check_environment()
    run = RunFolder(recipe.run_dir)
    if resume:
        if run.latest_checkpoint() is None:
            raise ConfigError(f"cannot resume {run.path}: it has no complete checkpoint")
    elif run.recipe_file.exists():
        if not force:
            raise ConfigError(f"run folder {run.path} already exists: resume it with --resume {run.path}, "
                              f"choose another name (name=...) or replace it with --force")  # fmt: skip
        if current_role().writes:
            shutil.rmtree(run.path)
    return Trainer(recipe, run, progress).run(resume)


def resume(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = (), progress: bool = True) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest checkpoint (overrides may e.g. raise max_steps)."""
    run = RunFolder.existing(run_dir)
    recipe = run.recipe(overrides)
    recipe = replace(recipe, output_dir=str(run.path.parent), name=run.path.name)
    return train(recipe, resume=True, progress=progress)


class Trainer:
    """Trains one recipe into one run folder; ``run(resume)`` does everything (see the module docstring)."""

    def __init__(self, recipe: Recipe, run: RunFolder, progress: bool) -> None:
        self.recipe = recipe
        self.run_folder = run
        self.method = recipe.training_method
        self.objective = OBJECTIVES[recipe.train.objective]
        self.role = current_role()
        self.progress = show_progress(progress)
        self.completed = 0  # optimiser steps done so far (the state a checkpoint would hold)
        # set by _setup:
        self.model: torch.nn.Module
        self.tokenizer: Any
        self.device: torch.device
        self.precision: Precision
        self.eval_precision: Precision
        self.dataset: TokenizedDataset
        self.collate: Callable[[list], dict[str, torch.Tensor]]
        self.reference: torch.nn.Module | None
        self.trainable: list[tuple[str, torch.nn.Parameter]]
        self.plan: BatchPlan
        self.total_steps: int
        self.train_step: TrainStep

    # -- setup -----------------------------------------------------------------------------
    def _setup(self) -> None:
        recipe = self.recipe
        _seed_everything(recipe.train.seed)
        self.model, self.tokenizer = base_model(recipe)
        self.device = next(self.model.parameters()).device
        self.precision = resolve_precision(recipe.train.precision, self.device)
        self.eval_precision = resolve_precision(recipe.eval.precision, self.device)
        self.dataset = training_set(recipe.data, self.tokenizer, recipe.train.seed)
        self.collate = self.objective.collator(self.tokenizer)
        self.reference = self._reference_model()
        make_trainable(self.model, recipe)
        self.trainable = trainable_named_parameters(self.model)
        optimizer = build_optimizer(self.model, recipe.optimizer)
        self.plan = BatchPlan(len(self.dataset), recipe.train.micro_batch_size, recipe.train.grad_accum, recipe.train.seed, self.role)
        self.total_steps = self.plan.total_steps(recipe.train.epochs, recipe.train.max_steps)
        schedule = lr_multiplier(recipe.train.schedule, self.total_steps, recipe.train.warmup_steps, recipe.train.min_lr_ratio)
        self.train_step = TrainStep(self.model, self.objective, optimizer, schedule, recipe.train.max_grad_norm,
                              autocast=lambda: autocast(self.precision.name, self.device))  # fmt: skip

    def _reference_model(self) -> torch.nn.Module | None:
        """A frozen copy of the base for KL when there is no adapter to switch off (full fine-tuning)."""
        compares = any(KINDS[parse_task(t).kind].compares_to_base for t in self.recipe.eval.tasks)
        if self.method.uses_adapter or not compares:
            return None
        reference, _ = base_model(self.recipe)
        return reference.requires_grad_(False).eval()

    # -- the run -----------------------------------------------------------------------------
    def run(self, resume: bool) -> TrainResult:
        started = time.perf_counter()
        self._setup()
        run, recipe = self.run_folder, self.recipe
        if self.role.writes:
            run.path.mkdir(parents=True, exist_ok=True)
            run.recipe_file.write_text(recipe.to_yaml(), encoding="utf-8")
        train_precision = self.precision.describe(recipe.train.precision)
        eval_precision = self.eval_precision.describe(recipe.eval.precision)
        summary = RunSummary(recipe, run, trainable_parameters(self.model, verbose=False), self.dataset.stats.summary(),
                             train_precision, self.method.notes(self.model))  # fmt: skip
        for note in summary.notes:
            say(f"loralab: {note}")
        say(f"loralab: training and evaluation in {train_precision}" if train_precision == eval_precision
            else f"loralab: training in {train_precision}; evaluation in {eval_precision}")  # fmt: skip
        say(f"loralab: {recipe.method} on {recipe.model.name}: {summary.parameters}\nloralab: data: {summary.data}\n"
            f"loralab: {self.total_steps} steps of {recipe.train.micro_batch_size}×{recipe.train.grad_accum} examples → {run.path}")  # fmt: skip

        start = 0
        before: list = []
        if resume:
            start = self._restore(run.latest_checkpoint())
            before = run.evaluation(BEFORE)
        elif recipe.eval.tasks and recipe.eval.before:
            before = self._evaluate(BEFORE)
        losses = [r["loss"] for r in run.read_metrics()]
        try:
            step = self._loop(start, losses)
        except KeyboardInterrupt:
            if self.completed > start:
                path = self._checkpoint(self.completed)
                say(f"\nloralab: interrupted after step {self.completed}; checkpoint {path.name} saved. "
                    f"Continue with: loralab train --resume {run.path}")  # fmt: skip
            else:
                say(f"\nloralab: interrupted; the newest checkpoint is kept. Continue with: loralab train --resume {run.path}")
            raise
        saved = run.checkpoints()
        if step > (saved[-1][0] if saved else 0):
            self._checkpoint(step)
        if self.role.writes:
            self.method.save_final(self.model, self.tokenizer, run)
        final = self._evaluate(FINAL) if recipe.eval.tasks else []
        before = self._complete_before(before, final) if before else before
        result = TrainResult(run.path, step, time.perf_counter() - started, losses, before, final)
        if self.role.writes:
            finish_report(summary, result)
        return result

    def _loop(self, start: int, losses: list[float]) -> int:
        recipe, run = self.recipe, self.run_folder
        self.completed = start
        self.model.train()
        bar = tqdm(total=self.total_steps, initial=start, desc=f"train {recipe.name}", disable=not self.progress, unit="step")
        try:
            for step in range(start, self.total_steps):
                record = self._step(step)
                losses.append(record["loss"])
                if self.role.writes:
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
        """Collate the step's micro-batches, run the step, and make its metrics record."""
        batches = [self.collate([self.dataset[i] for i in indices]) for indices in self.plan.step(step)]
        try:
            done: StepResult = self.train_step(step, batches)
        except EmptyStep as err:
            raise TrainingDiverged(str(err)) from None
        except NonFiniteStep as err:
            latest = self.run_folder.latest_checkpoint()
            kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint had been written yet"
            raise TrainingDiverged(f"step {err.step + 1}: the {err.quantity} is {err.value}; stopped ({kept}). "
                                   f"Try a lower optimizer.lr or train.max_grad_norm.") from None  # fmt: skip
        return {
            "step": step + 1,
            "epoch": round(self.plan.epoch_of(step + 1), 4),
            "loss": done.loss,
            **done.metrics,
            "lr": self.recipe.optimizer.lr * done.lr_multiplier,
            "grad_norm": done.grad_norm,
            "tokens": done.tokens,
            "labelled_tokens": done.normaliser,
            "tokens_per_s": done.tokens / done.seconds,
            "seconds": done.seconds,
            "peak_memory_mb": round(peak_memory_mb(self.device), 1),
        }

    # -- checkpoints -------------------------------------------------------------------------
    def _checkpoint(self, step: int) -> Path:
        state = {
            "step": step,
            "optimizer": self.train_step.optimizer.state_dict(),
            "rng": _rng_state(),
            "identity": self.method.identity(self.recipe),
        }
        tensors = {name: p.detach() for name, p in self.trainable}
        path = self.run_folder.checkpoints_dir / f"step-{step:08d}"
        if self.role.writes:
            path = ckpt.save_checkpoint(self.run_folder.checkpoints_dir, step, tensors, state, self.recipe.train.keep_checkpoints,
                                        self.method.checkpoint_writer(self.model))  # fmt: skip
        return path

    def _restore(self, path: Path) -> int:
        step, tensors, state = ckpt.load_checkpoint(path)
        found, expected = state.get("identity", {}), self.method.identity(self.recipe)
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
        self.train_step.optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        if self.role.writes:
            self.run_folder.keep_metrics_until(step)
        say(f"loralab: resumed from {path} (step {step} of {self.total_steps})")
        return step

    # -- evaluation -------------------------------------------------------------------------------
    def _evaluate(self, label: str) -> list:
        config = self.recipe.eval
        tasks = list(config.tasks)
        kl_tasks = [t for t in tasks if KINDS[parse_task(t).kind].compares_to_base]
        skipped: list[str] = []
        if label == BEFORE and self.method.uses_adapter:
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
        if self.role.writes:
            self.run_folder.eval_dir.mkdir(parents=True, exist_ok=True)
            to_json(results, self.run_folder.eval_file(label), variant=label)
        deferred = [t for t in skipped if t not in kl_tasks]
        say(f"\nevaluation ({label}):\n{results_table(results)}"
            + (f"\n({', '.join(deferred)} of the base: with the final KL pass)" if deferred else ""))  # fmt: skip
        return results

    def _complete_before(self, before: list, final: list) -> list:
        """Add to the before-training results what the final KL pass measured on the base (its perplexity)."""
        have = {r.task for r in before}
        added = [TaskResult(**r.details["base_perplexity"]) for r in final
                 if "base_perplexity" in r.details and r.details["base_perplexity"]["task"] not in have]  # fmt: skip
        if added:
            before = before + added
            if self.role.writes:
                to_json(before, self.run_folder.eval_file(BEFORE), variant=BEFORE)
        return before


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
