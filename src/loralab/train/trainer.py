"""The training loop: a recipe in, a run folder out.

The recipe's method (:mod:`loralab.train.methods`) prepares the model; optimiser step s
(0-based) collates the micro-batches ``BatchPlan.step(s)`` and hands them to a
:class:`~loralab.train.step.TrainStep` (the recipe's objective, backward, clipping, lr schedule,
optimiser step). Only the writing process (:mod:`loralab.process`) writes files and prints.

Checkpoint ``step-N`` holds the state after N steps: trainable weights, optimiser, RNG states.
The data position and the learning rate follow from N, so a resumed run repeats exactly
what the uninterrupted run would have done. Checkpoints are written every
``train.checkpoint_every`` steps, after ``train.checkpoint_minutes``, at the end, and when a
stop signal arrives (Ctrl-C, SIGTERM, SIGHUP; :mod:`loralab.stops`): a step is then
either complete and recorded or not begun, and a checkpoint is written for the last complete
step unless it has one. From the final adapter or model to the report a signal waits, and the run
finishes: a run with its final output counts as finished (studies skip it). A non-finite loss,
gradient or updated weight stops the run and keeps the last good checkpoint. One process at a time works in a run folder (:mod:`loralab.train.run_lock`).

Resuming checks everything before it writes anything: the checkpoint's identity, tensor
names and shapes, the optimiser state. A damaged newest checkpoint (unreadable, or NaN) is set
aside as ``step-N.damaged`` and the previous complete one is used.

Under ``torchrun`` every process runs this loop on its share of each step (:mod:`loralab.train.distributed`):
the model is wrapped by the recipe's strategy (DDP, FSDP2), stop signals are only noted and all ranks stop
after the same step, DDP evaluations run on rank 0 while the others wait, and FSDP checkpoints are sharded.
"""

from __future__ import annotations

import random
import signal
import sys
import time
from contextlib import nullcontext
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
from loralab.lora.frozen_base import hold_frozen_base_in
from loralab.lora.report import trainable_parameters
from loralab.models.precision import Precision, resolve_precision
from loralab.outputs import write_failure, writing
from loralab.process import current_role, say, show_progress
from loralab.stops import StopSignals
from loralab.train import checkpoint as ckpt
from loralab.train.batches import BatchPlan
from loralab.train.data_setup import training_set
from loralab.train.distributed.setup import barrier, process_group
from loralab.train.memory import peak_memory_mb
from loralab.train.model_setup import autocast, base_model, head_loss_for, make_trainable, trainable_named_parameters
from loralab.train.objectives import Objective, RunContext
from loralab.train.optim import build_optimizer
from loralab.train.recipe import Recipe
from loralab.train.report import RunSummary, finish_report
from loralab.train.runs import BEFORE, FINAL, RunFolder
from loralab.train.schedules import lr_multiplier
from loralab.train.step import EmptyStep, NonFiniteStep, NonFiniteUpdate, StepResult, TrainStep
from loralab.train.trackers import Trackers


class TrainingDiverged(LoraLabError):
    """The loss or the gradient became NaN or infinite."""

    same_on_every_rank = False  # a rank's own loss may be the one that diverged


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
    """Run ``recipe`` into ``recipe.run_dir`` (``resume``: continue from its last checkpoint).
    Under ``torchrun`` every process calls this; it joins their group first (:mod:`loralab.train.distributed`)."""
    recipe.check_environment()
    with process_group(recipe.distributed, recipe.train.device):
        return _train(recipe, resume=resume, force=force, progress=progress)


def _train(recipe: Recipe, *, resume: bool, force: bool, progress: bool) -> TrainResult:
    run = RunFolder(recipe.run_dir)
    writes = current_role().writes
    with run.lock() if writes else nullcontext(), StopSignals() as stops:
        if resume and run.latest_checkpoint() is None and not _damaged_only(run):
            say(f"loralab: {run.path} has no complete checkpoint yet: starting it again from step 0")
            resume = False
            if writes:
                run.clear()
        elif not resume and run.recipe_file.exists():
            if not force:
                raise ConfigError(f"run folder {run.path} already exists: resume it with --resume {run.path}, "
                                  f"choose another name (name=...) or replace it with --force")  # fmt: skip
            if writes:
                run.clear()
        barrier()  # every rank has decided before rank 0 writes anything
        return Trainer(recipe, run, progress, stops).run(resume)


def _damaged_only(run: RunFolder) -> bool:
    """Whether the run has checkpoint folders but none of them complete (then resuming is an error, not a restart)."""
    return run.checkpoints_dir.is_dir() and any(p.name.startswith("step-") for p in run.checkpoints_dir.iterdir())


def resume(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = (), progress: bool = True) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest checkpoint (overrides may e.g. raise max_steps)."""
    run = RunFolder.existing(run_dir)
    recipe = run.recipe(overrides)
    recipe = replace(recipe, output_dir=str(run.path.parent), name=run.path.name)
    return train(recipe, resume=True, progress=progress)


class Trainer:
    """Trains one recipe into one run folder; ``run(resume)`` does everything (see the module docstring)."""

    def __init__(self, recipe: Recipe, run: RunFolder, progress: bool, stops: StopSignals | None = None) -> None:
        self.recipe = recipe
        self.stops = stops or StopSignals()  # a held section without installed handlers is harmless
        self.run_folder = run
        self.method = recipe.training_method
        self.objective: Objective  # built by _setup for this run (its reference, its precomputed values)
        self.role = current_role()
        self.progress = show_progress(progress)
        self.completed = 0  # optimiser steps done so far (the state a checkpoint would hold)
        self.rng_after_completed: dict[str, Any] = {}  # the RNG state right after step `completed`
        self.last_saved = 0  # the newest checkpoint's step
        self.last_saved_at = time.monotonic()
        self.trackers = Trackers()  # train.report_to, opened by run() in the writing process only
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
    def _setup(self, resume: bool) -> None:
        recipe = self.recipe
        _seed_everything(recipe.train.seed)
        self.model, self.tokenizer = base_model(recipe)
        self.device = next(self.model.parameters()).device
        self.precision = resolve_precision(recipe.train.precision, self.device)
        self.eval_precision = resolve_precision(recipe.eval.precision, self.device)
        self.dataset = training_set(recipe.data, self.tokenizer, recipe.train.seed)
        self._frozen: torch.nn.Module | None = None
        self.reference = self._reference_model()
        make_trainable(self.model, recipe)
        if self.precision.name == self.eval_precision.name == "bf16":
            hold_frozen_base_in(self.model, torch.bfloat16)  # what autocast computes with anyway: same forward
        self.trainable = trainable_named_parameters(self.model)
        context = RunContext(self.model, self.tokenizer, self.dataset, self.method.uses_adapter, self._frozen_base, not resume,
                             self.run_folder.path if self.role.writes else None, lambda: autocast(self.precision.name, self.device),
                             recipe.train.micro_batch_size, self.progress, head_loss_for(recipe))  # fmt: skip
        self.objective = recipe.training_objective.for_run(recipe.objective_options, context)
        self.dataset = self.objective.training_examples(self.dataset)
        self.collate = self.objective.collator(self.tokenizer)
        self.plan = BatchPlan(len(self.dataset), recipe.train.micro_batch_size, recipe.train.grad_accum, recipe.train.seed, self.role)
        self.parallel = None  # one process; else the recipe's strategy around the model (before the optimiser: FSDP shards)
        if self.role.world_size > 1:
            from loralab.train.distributed.checks import check_world_fits
            from loralab.train.distributed.strategies import parallel_model

            check_world_fits(self.plan)
            self.parallel = parallel_model(recipe, self.model, self.device, self.precision.name)
            self.trainable = trainable_named_parameters(self.model)
        optimizer = build_optimizer(self.model, recipe.optimizer)
        self.total_steps = self.plan.total_steps(recipe.train.epochs, recipe.train.max_steps)
        schedule = lr_multiplier(recipe.train.schedule, self.total_steps, recipe.train.warmup_steps, recipe.train.min_lr_ratio)
        self.train_step = TrainStep(self.model, self.objective, optimizer, schedule, recipe.train.max_grad_norm,
                              autocast=lambda: autocast(self.precision.name, self.device), before_update=self.stops.hold,
                              parallel=self.parallel)  # fmt: skip

    def _reference_model(self) -> torch.nn.Module | None:
        """A frozen copy of the base for KL when there is no adapter to switch off (full fine-tuning)."""
        compares = any(KINDS[parse_task(t).kind].compares_to_base for t in self.recipe.eval.tasks)
        if self.method.uses_adapter or not compares:
            return None
        return self._frozen_base()

    def _frozen_base(self) -> torch.nn.Module:
        """The base model, frozen, loaded once (KL's reference and DPO's share it)."""
        if self._frozen is None:
            reference, _ = base_model(self.recipe)
            self._frozen = reference.requires_grad_(False).eval()
        return self._frozen

    # -- the run -----------------------------------------------------------------------------
    def run(self, resume: bool) -> TrainResult:
        started = time.perf_counter()
        self._setup(resume)
        run, recipe = self.run_folder, self.recipe
        start = self._restore() if resume else 0  # every check before anything is written
        if self.parallel is not None:
            self.parallel.seed_rank(recipe.train.seed, start)
            self.stops.hold()  # signals only noted from here on: all ranks stop together at a step boundary
            say(f"loralab: {self.role.world_size} processes ({self.parallel.name}); each step takes "
                f"{recipe.train.micro_batch_size}×{recipe.train.grad_accum} examples on each of them")  # fmt: skip
        if self.role.writes:
            self._write_recipe()
            if resume:
                run.keep_metrics_until(start)
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

        saved = run.checkpoints()
        self.completed = start
        self.last_saved = saved[-1][0] if saved else 0
        self.rng_after_completed = _rng_state()
        if self.role.writes and recipe.train.report_to:
            self.trackers = Trackers.open(recipe.train.report_to, run.path, recipe.name, recipe.to_dict(), start, resume)
        try:
            before: list = run.evaluation(BEFORE) if resume else []
            if not resume and recipe.eval.tasks and recipe.eval.before:
                before = self._evaluate(BEFORE)
            if resume and self._evaluation_missing_at(start):  # stopped during it: the checkpoint holds its weights
                self._evaluate(f"step-{start:08d}")
            losses = [r["loss"] for r in run.read_metrics()]
            step = self._loop(start, losses)
            if step > self.last_saved:
                self._checkpoint(step)
            # the final evaluation before the final adapter/model: a run stopped during it is not yet finished,
            # and resuming it (at its last step, checkpointed) evaluates and saves
            final = self._evaluate(FINAL) if recipe.eval.tasks else []
            # from the final output to the report, a stop signal waits: a run that has its final output is
            # finished (a study skips it, resuming it has nothing left), so its report must be written too
            self.stops.hold()
            with self._whole_model():  # FSDP: rank 0 holds the gathered weights meanwhile (every rank enters)
                if self.role.writes:
                    with writing(run.path, f"cannot write {self.method.output_folder(run)}"):
                        self.method.save_final(self.model, self.tokenizer, run)
            before = self._complete_before(before, final) if before else before
            result = TrainResult(run.path, step, time.perf_counter() - started, losses, before, final)
            if self.role.writes:
                with writing(run.path, f"cannot write the report of {run.path}"):
                    finish_report(summary, result)
            late = self.stops.pending
            self.stops.release(raise_pending=False)
            if late is not None:
                say(f"loralab: {signal.Signals(late).name} came while the final outputs were written; "
                    f"they are complete and the run is finished")  # fmt: skip
        except KeyboardInterrupt as stop:
            self._save_on_stop(getattr(stop, "signame", "SIGINT"))
            raise
        finally:
            self.trackers.close(sys.exc_info()[1])  # finished, failed or stopped: flushed either way
        return result

    def _whole_model(self) -> Any:
        """A context in which rank 0's model holds its whole trainable weights: under FSDP they are gathered
        first (a collective, every rank calls this); otherwise it is whole already (a no-op context)."""
        if self.parallel is None or not self.parallel.shards_state:
            return nullcontext()
        from loralab.train.distributed.sharded_checkpoint import whole_parameters

        return whole_parameters(self.model)

    def _write_recipe(self) -> None:
        tmp = self.run_folder.recipe_file.with_suffix(".tmp")
        try:
            tmp.write_text(self.recipe.to_yaml(), encoding="utf-8")
            tmp.replace(self.run_folder.recipe_file)
        except OSError as err:
            raise write_failure(err, self.run_folder.path, f"cannot write {self.run_folder.recipe_file}") from None

    def _save_on_stop(self, signame: str) -> None:
        """After a stop signal: checkpoint the last complete step unless it has one, and say how to go on."""
        run = self.run_folder
        how = f"Continue with: loralab train --resume {run.path}"
        if self.completed > self.last_saved:
            path = self._checkpoint(self.completed, raise_pending=False)
            say(f"\nloralab: stopped by {signame} after step {self.completed}; checkpoint {path.name} saved. {how}")
        elif self.last_saved:
            say(f"\nloralab: stopped by {signame}; step {self.last_saved} is checkpointed. {how}")
        else:
            say(f"\nloralab: stopped by {signame} before the first step. {how}")

    def _loop(self, start: int, losses: list[float]) -> int:
        recipe, run = self.recipe, self.run_folder
        self.model.train()
        bar = tqdm(total=self.total_steps, initial=start, desc=f"train {recipe.name}", disable=not self.progress, unit="step")
        try:
            for step in range(start, self.total_steps):
                try:
                    if self.parallel is not None:
                        self.parallel.seed_rank(recipe.train.seed, step)  # ranks > 0: a stream per step, resumable
                    record = self._step(step)  # TrainStep holds stop signals from just before its update
                    losses.append(record["loss"])
                    if self.role.writes:
                        run.append_metrics(record)
                        self.trackers.log_metrics(record)
                    self.completed = step + 1
                    self.rng_after_completed = _rng_state()
                except BaseException:
                    self.stops.release(raise_pending=False)
                    raise
                self.stops.release()  # a signal that came during the update is raised now, the step recorded
                bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}", tok_s=f"{record['tokens_per_s']:.0f}")
                bar.update(1)
                done = step + 1
                if recipe.eval.tasks and recipe.eval.every and done % recipe.eval.every == 0 and done < self.total_steps:
                    self._evaluate(f"step-{done:08d}")
                    self.model.train()
                every, minutes = recipe.train.checkpoint_every, recipe.train.checkpoint_minutes
                due = (every and done % every == 0) or (minutes and time.monotonic() - self.last_saved_at >= 60 * minutes)
                if self.parallel is not None and self.parallel.shards_state:  # every rank writes: all decide alike
                    due = self.parallel.sum([float(bool(due))])[0] > 0
                if due:
                    self._checkpoint(done)
                if self.parallel is not None:
                    from loralab.train.distributed.stopping import stop_together

                    stop_together(self.stops)  # a signal to any rank stops every rank here
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
        except (NonFiniteStep, NonFiniteUpdate) as err:
            latest = self.run_folder.latest_checkpoint()
            kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint had been written yet"
            raise TrainingDiverged(f"{err}; stopped ({kept}). Try a lower optimizer.lr or train.max_grad_norm.") from None
        return {
            "step": step + 1,
            "epoch": round(self.plan.epoch_of(step + 1), 4),
            "loss": done.loss,
            **done.metrics,
            "lr": self.recipe.optimizer.lr * done.lr_multiplier,
            "grad_norm": done.grad_norm,
            "tokens": done.tokens,
            self.objective.normaliser_name: done.normaliser,
            "tokens_per_s": done.tokens / done.seconds,
            "seconds": done.seconds,
            "peak_memory_mb": round(peak_memory_mb(self.device), 1),
        }

    # -- checkpoints -------------------------------------------------------------------------
    def _checkpoint(self, step: int, raise_pending: bool = True) -> Path:
        """Write checkpoint ``step`` (= ``self.completed``) in a held section: a signal waits until it is whole."""
        assert step == self.completed, (step, self.completed)
        state = {
            "step": step,
            "optimizer": self.train_step.optimizer.state_dict(),
            "optimizer_name": self.recipe.optimizer.name,
            "rng": self.rng_after_completed,
            "identity": self.method.identity(self.recipe),
        }
        if self.parallel is not None:  # what a resume on another number of processes must keep (the data order)
            state["examples_per_micro_batch"] = self.plan.global_micro_batch_size
        tensors = {name: p.detach() for name, p in self.trainable}
        path = self.run_folder.checkpoints_dir / f"step-{step:08d}"
        self.stops.hold()
        try:
            if self.parallel is not None and self.parallel.shards_state:  # FSDP: every rank writes its shards (DCP)
                from loralab.train.distributed.sharded_checkpoint import save_sharded

                del state["optimizer"]  # sharded, in the DCP folder
                path = save_sharded(self.run_folder.checkpoints_dir, step, self.model, self.train_step.optimizer, state,
                                    self.recipe.train.keep_checkpoints)  # fmt: skip
            elif self.role.writes:
                path = ckpt.save_checkpoint(self.run_folder.checkpoints_dir, step, tensors, state, self.recipe.train.keep_checkpoints,
                                            self.method.checkpoint_writer(self.model))  # fmt: skip
            self.last_saved, self.last_saved_at = step, time.monotonic()
        except BaseException:
            self.stops.release(raise_pending=False)
            raise
        self.stops.release(raise_pending)
        return path

    def _restore(self) -> int:
        """Load the newest readable checkpoint after checking it fits; damaged newer ones are set aside.
        Under FSDP every rank makes the same choices: they read the same files."""
        from loralab.train.distributed.sharded_checkpoint import is_sharded

        damaged: list[Path] = []
        for _, path in reversed(self.run_folder.checkpoints()):
            try:  # a sharded checkpoint (FSDP) is read by any number of processes
                step = self._restore_sharded(path) if is_sharded(path) else self._restore_whole(path)
            except ckpt.DamagedCheckpoint as err:
                say(f"loralab: {err}; trying the previous checkpoint")
                damaged.append(path)
                continue
            barrier()  # every rank has read its checkpoint before rank 0 sets the damaged ones aside
            if self.role.writes:
                for bad in damaged:
                    bad.rename(bad.with_name(bad.name + ".damaged"))
            say(f"loralab: resumed from {path} (step {step} of {self.total_steps})")
            return step
        raise ConfigError(f"cannot resume {self.run_folder.path}: no checkpoint can be read "
                          f"({', '.join(p.name for p in damaged)} damaged); start again with --force")  # fmt: skip

    def _restore_whole(self, path: Path) -> int:
        """Resume from a checkpoint of whole tensors (one process, or DDP); DamagedCheckpoint if unreadable."""
        step, tensors, state = ckpt.load_checkpoint(path)
        self._check_fits(path, tensors, state)
        with torch.no_grad():
            for name, param in self.trainable:
                param.copy_(tensors[name])
        try:
            self.train_step.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, RuntimeError) as err:
            raise ConfigError(f"checkpoint {path}: its optimiser state does not fit this recipe's optimizer ({err})") from None
        _set_rng_state(state["rng"])
        return step

    def _restore_sharded(self, path: Path) -> int:
        """Resume from a checkpoint of sharded weights (FSDP, :mod:`loralab.train.distributed.sharded_checkpoint`);
        DamagedCheckpoint if its state or a shard file is unreadable or cut short."""
        from loralab.train.distributed.sharded_checkpoint import check_shards, load_sharded, read_state

        step, state = read_state(path)
        check_shards(path)
        self._check_identity(path, state)
        load_sharded(path, self.model, self.train_step.optimizer)
        _set_rng_state(state["rng"])
        return step

    def _check_identity(self, path: Path, state: dict[str, Any]) -> None:
        """Refuse a checkpoint written by another method or model, or whose data order this run would not continue."""
        found, expected = state.get("identity", {}), self.method.identity(self.recipe)
        for key in expected:
            if found.get(key) != expected[key]:
                raise ConfigError(f"checkpoint {path} was written with {key} = {found.get(key)}, but the recipe now says "
                                  f"{expected[key]}; resume with the recipe it was trained with")  # fmt: skip
        written_by = state.get("examples_per_micro_batch")  # written by several processes: each micro-batch's size over all
        if written_by is not None and written_by != self.plan.global_micro_batch_size:
            from loralab.train.distributed.checks import resume_world_error

            raise resume_world_error(path, written_by, self.plan)

    def _check_fits(self, path: Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        """Refuse a checkpoint written by another method, model, or with other tensor names or shapes."""
        self._check_identity(path, state)
        names = {name for name, _ in self.trainable}
        if set(tensors) != names:
            missing = sorted(names - set(tensors)) or sorted(set(tensors) - names)
            raise ConfigError(f"checkpoint {path} does not fit this model: it holds {len(tensors)} tensors, the model "
                              f"trains {len(names)} (e.g. {missing[0]}); resume with the recipe it was trained with")  # fmt: skip
        for name, param in self.trainable:
            if tensors[name].shape != param.shape:
                raise ConfigError(f"checkpoint {path} does not fit this model: {name} is {tuple(tensors[name].shape)} "
                                  f"there and {tuple(param.shape)} here (was lora.r changed?); resume with the recipe it was trained with")  # fmt: skip
        written_with = state.get("optimizer_name", self.recipe.optimizer.name)  # older checkpoints do not say
        if written_with != self.recipe.optimizer.name:
            raise ConfigError(f"checkpoint {path} was written with optimizer {written_with}, but the recipe now says "
                              f"{self.recipe.optimizer.name}; resume with the recipe it was trained with")  # fmt: skip
        groups = state.get("optimizer", {}).get("param_groups", [])
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.train_step.optimizer.param_groups]:
            raise ConfigError(f"checkpoint {path}: its optimiser has other parameter groups than this recipe's "
                              f"(was optimizer.loraplus_ratio or the optimiser changed?); resume with the recipe it was trained with")  # fmt: skip
        params = [p for g in self.train_step.optimizer.param_groups for p in g["params"]]
        ids = [i for g in groups for i in g["params"]]
        for index, param in zip(ids, params):
            for key, value in state["optimizer"].get("state", {}).get(index, {}).items():
                if torch.is_tensor(value) and value.dim() > 0 and value.shape != param.shape:
                    raise ConfigError(f"checkpoint {path}: optimiser state {key} is {tuple(value.shape)}, the parameter "
                                      f"{tuple(param.shape)}; resume with the recipe it was trained with")  # fmt: skip

    # -- evaluation -------------------------------------------------------------------------------
    def _evaluation_missing_at(self, step: int) -> bool:
        """Whether step ``step`` should have an ``eval.every`` evaluation that was not saved."""
        every, tasks = self.recipe.eval.every, self.recipe.eval.tasks
        return bool(tasks and every and 0 < step < self.total_steps and step % every == 0
                    and not self.run_folder.eval_file(f"step-{step:08d}").is_file())  # fmt: skip

    def _evaluate(self, label: str) -> list:
        config = self.recipe.eval
        tasks = list(config.tasks)
        exact = {t: KINDS[parse_task(t).kind].exact_at_base for t in tasks if KINDS[parse_task(t).kind].exact_at_base}
        skipped: list[str] = []
        if label == BEFORE and self.method.uses_adapter:
            # Before training an adapter is exactly zero (B·A = 0): KL to the base is exactly 0, and the base's
            # perplexity on the KL text comes with the final KL pass, whose base side is this very model.
            skipped = list(exact) + [t for t in tasks if t in {twin_of(k) for k in exact}]
        rng_devices = [self.device] if self.device.type == "cuda" else []
        results = []
        with torch.random.fork_rng(devices=rng_devices), autocast(self.eval_precision.name, self.device):
            if len(skipped) < len(tasks):
                run = lambda: evaluate(self.model, self.tokenizer, [t for t in tasks if t not in skipped], limit=config.limit,  # noqa: E731
                                       seed=config.seed, reference=self.reference, progress=self.progress, **self.recipe.eval_settings)  # fmt: skip
                results = run() if self.parallel is None else self.parallel.evaluate(run)  # DDP: rank 0 alone, the others wait
        results += [result for t, known in exact.items() if t in skipped for result in known(t)]
        if self.role.writes:
            with writing(self.run_folder.path, f"cannot write {self.run_folder.eval_file(label)}"):
                self.run_folder.eval_dir.mkdir(parents=True, exist_ok=True)
                to_json(results, self.run_folder.eval_file(label), variant=label)
            self.trackers.log_evaluation(label, results, self.completed)
        deferred = [t for t in skipped if t not in exact]
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
                self.trackers.log_evaluation(BEFORE, added, 0)
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
