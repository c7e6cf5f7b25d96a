"""A training recipe: one YAML file, one typed section per concern, validated before any model loads.

    name: quickstart            # the run folder is <output_dir>/<name>
    method: lora                # a name in loralab.train.methods.METHODS: lora | qlora | full
    model:     ModelConfig      # which base model, weight dtype, dropout in the model
    lora:      LoraConfig       # rank, alpha, rsLoRA, DoRA, targets (methods lora / qlora)
    quant:     QuantConfig      # the 4-bit base (method qlora)
    data:      DataConfig       # a built-in task or a file; instruction, raw text or preference pairs
    optimizer: OptimizerConfig  # AdamW / SGD, lr, weight decay, LoRA+
    train:     TrainConfig      # steps, batches, schedule, precision, checkpoints, objective
    dpo:       PreferenceOptions  # β, loss, reference (objective dpo)
    eval:      EvalConfig       # tasks, when, how many items
    distributed: DistributedConfig  # optional: ddp | fsdp, backend, timeout (runs under torchrun)

``load_recipe(path, overrides)`` applies ``key=value`` overrides (dotted keys, YAML values)
to the file's mapping, then validates everything: unknown keys, wrong types, bad ranges and
sections the method or the objective does not use are errors that name the key. What depends on the machine
(does the data file exist?) is checked by ``Recipe.check_environment`` where it is used: before
training, not when a finished run's saved recipe is read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml

from loralab.errors import ConfigError
from loralab.lora.config import LoraConfig
from loralab.models.attention import ATTENTION
from loralab.process import say
from loralab.quant.config import QuantConfig
from loralab.train.distributed.config import DistributedConfig
from loralab.train.methods import METHODS, Method
from loralab.train.objectives import OBJECTIVES, Objective, PreferenceOptions
from loralab.train.optim import OptimizerConfig
from loralab.train.schedules import SCHEDULES
from loralab.train.schema import as_dict, build, check_fields
from loralab.train.trackers import TRACKERS, check_installed

#: sections only some methods read (each method lists its own in ``Method.sections``)
METHOD_SECTIONS = ("lora", "quant")
#: sections only some objectives read (each objective names its own in ``Objective.section``)
OBJECTIVE_SECTIONS = tuple(objective.section for objective in OBJECTIVES.values() if objective.section)

#: seeds are multiplied into torch generator seeds (< 2**64), so they stay below 2**32 as numpy's do
Seed = Annotated[int, "[0, 2**32)"]


@dataclass(frozen=True)
class ModelConfig:
    """The base model: a loader name (``smollm2-135m-instruct``, ``tiny-llama``), a folder or a hub id.

    ``dtype`` is the dtype of the weights in memory (trainable weights should stay float32;
    use ``train.precision: bf16`` for bf16 compute). ``dropout`` is applied to every
    attention and MLP output during training (a regulariser for full fine-tuning). ``attention`` picks
    the attention kernel (:mod:`loralab.models.attention`; ``auto``: transformers' choice, SDPA).
    """

    name: str = "smollm2-135m-instruct"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    dropout: Annotated[float, "[0, 1)"] = 0.0
    attention: str = "auto"

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.name:
            raise ConfigError("name: give a model name, folder or hub id")
        if self.attention not in ATTENTION:
            raise ConfigError(f"attention must be one of {', '.join(ATTENTION)}, got {self.attention!r}")


@dataclass(frozen=True)
class DataConfig:
    """What the model trains on: a built-in ``task`` (arith, arith-preference, pycode, source-text) or a ``path``.

    ``regime``: ``instruction`` (loss on responses only, unless ``train_on_prompt``),
    ``pretraining`` (raw text packed into blocks of ``block_size`` tokens, loss on all) or
    ``preference`` (prompt, chosen and rejected responses, for ``train.objective: dpo``).
    ``examples`` caps the training examples drawn from a task (or taken from a file).
    """

    task: Optional[str] = None
    path: Optional[str] = None
    task_options: dict = field(default_factory=dict)
    examples: Optional[Annotated[int, "[1, inf)"]] = None
    regime: Literal["instruction", "pretraining", "preference"] = "instruction"
    max_length: Annotated[int, "[2, inf)", "a length in tokens"] = 512
    block_size: Annotated[int, "[2, inf)", "a length in tokens"] = 256
    train_on_prompt: bool = False

    def __post_init__(self) -> None:
        check_fields(self)
        if (self.task is None) == (self.path is None):
            raise ConfigError("give exactly one of task (a built-in task) or path (a data file)")
        if self.task is not None:
            from loralab.data.tasks import get_task
            from loralab.errors import LoraLabError

            try:
                get_task(self.task, **self.task_options)  # unknown task or option: fails here, not later
            except (LoraLabError, TypeError) as err:
                raise ConfigError(f"task: {err}") from None

    def check_environment(self) -> None:
        """The data file exists, a glob matches, a hub dataset name is cached (checked before training, not
        when a saved recipe is read)."""
        if self.path is not None and not Path(self.path).exists():
            from loralab.data.readers import check_source
            from loralab.errors import DataError

            try:
                check_source(self.path)
            except DataError as err:
                raise ConfigError(f"data.path: {err}") from None


@dataclass(frozen=True)
class TrainConfig:
    """How long and how: ``max_steps`` (optimiser steps) or ``epochs``; a step is
    ``grad_accum`` micro-batches of ``micro_batch_size`` examples, and ``objective`` names the
    loss (:mod:`loralab.train.objectives`). Learning rate follows
    ``schedule`` with ``warmup_steps`` (see :mod:`loralab.train.schedules`); gradients are
    clipped to ``max_grad_norm`` (0: off). ``precision: bf16`` runs the forward and backward
    under bf16 autocast (weights stay float32); ``auto`` (the default) picks bf16 where the device
    computes it natively and fp32 elsewhere (:mod:`loralab.models.precision`). A checkpoint is written every
    ``checkpoint_every`` steps (0: off) and after any step that ends ``checkpoint_minutes`` after the
    last one (0: off), at the end, and when the run is stopped by a signal (Ctrl-C, SIGTERM, SIGHUP);
    the newest ``keep_checkpoints`` are kept. ``lean_activations`` keeps for backward only what cannot
    be recomputed cheaply (RMSNorm and SwiGLU outputs are rebuilt; :mod:`loralab.models.lean_activations`);
    ``gradient_checkpointing`` recomputes whole layers instead. ``compile`` runs each decoder layer through
    ``torch.compile`` (compiled on first use; the same numbers to float rounding); lean activations are then
    left to the compiler (its partitioner chooses what backward keeps and what it recomputes). ``liger_kernels``
    puts Liger Kernel's Triton RMSNorm, RoPE and SwiGLU in a Llama-family model on CUDA (they replace the lean
    activations' RMSNorm and SwiGLU) and its fused linear + cross-entropy on the labelled positions (in place of
    loralab's; :mod:`loralab.models.liger`). ``report_to`` names experiment trackers that
    get every metrics record and evaluation (:mod:`loralab.train.trackers`; none by default).
    """

    epochs: Annotated[float, "(0, 10000]", "for a fixed length set max_steps"] = 1.0
    max_steps: Optional[Annotated[int, "[1, inf)"]] = None
    micro_batch_size: Annotated[int, "[1, inf)"] = 8
    grad_accum: Annotated[int, "[1, inf)"] = 1
    objective: str = "supervised"
    schedule: str = "cosine"
    warmup_steps: Annotated[int, "[0, inf)"] = 0
    min_lr_ratio: Annotated[float, "[0, 1]"] = 0.0
    max_grad_norm: Annotated[float, "[0, inf)", "0 turns clipping off"] = 1.0
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    gradient_checkpointing: bool = False
    lean_activations: bool = True
    compile: bool = False  # torch.compile each decoder layer (loralab.train.model_setup.compile_layers)
    liger_kernels: bool = False  # Liger Kernel's RMSNorm, RoPE, SwiGLU (CUDA; loralab.models.liger)
    seed: Seed = 0
    device: str = "cpu"
    checkpoint_every: Annotated[int, "[0, inf)", "0 turns it off"] = 0
    checkpoint_minutes: Annotated[float, "[0, inf)", "0 turns it off"] = 10.0
    keep_checkpoints: Annotated[int, "[1, inf)"] = 2
    report_to: tuple[str, ...] = ()  # experiment trackers (loralab.train.trackers): tensorboard, wandb, mlflow, trackio

    def __post_init__(self) -> None:
        check_fields(self)
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        unknown = [name for name in self.report_to if name not in TRACKERS]
        if unknown or len(set(self.report_to)) < len(self.report_to):
            problem = f"unknown tracker {unknown[0]!r}" if unknown else "a tracker is named twice"
            raise ConfigError(f"report_to: {problem}; choose from {', '.join(TRACKERS)}, e.g. [tensorboard]")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation with :func:`loralab.eval.evaluate`: ``tasks`` before training (``before``),
    every ``every`` steps (0: never during training) and at the end; ``limit`` items per task.
    ``precision``: ``bf16`` evaluates under bf16 autocast, ``auto`` (the default) where the device computes bf16 natively.
    ``settings`` are further :class:`~loralab.eval.options.EvalOptions` (batch_size, max_new_tokens, task_options...);
    the task trained on is evaluated with the data section's ``task_options`` unless they name it (``Recipe.eval_settings``).
    """

    tasks: tuple[str, ...] = ()
    limit: Optional[Annotated[int, "[1, inf)", "for no evaluation give eval.tasks: []"]] = None
    before: bool = True
    every: Annotated[int, "[0, inf)", "0: only before and after training"] = 0
    seed: Seed = 0
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.tasks:
            from loralab.eval.options import EvalOptions
            from loralab.eval.tasks.spec import parse_task

            for task in self.tasks:
                parse_task(task)
            unknown = sorted(set(self.settings) - set(EvalOptions.__dataclass_fields__) - {"limit", "seed"})
            if unknown:
                raise ConfigError(f"settings: unknown evaluation setting {unknown[0]!r}; known: {', '.join(EvalOptions.__dataclass_fields__)}")
            build(EvalOptions, {k: v for k, v in self.settings.items() if k not in ("limit", "seed")}, "settings")


@dataclass(frozen=True)
class Recipe:
    """A whole training run (see the module docstring)."""

    name: str = "run"
    method: str = "lora"
    output_dir: str = "runs"
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    data: DataConfig = field(default_factory=lambda: DataConfig(task="arith"))
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dpo: PreferenceOptions = field(default_factory=PreferenceOptions)
    eval: EvalConfig = field(default_factory=EvalConfig)
    distributed: Optional[DistributedConfig] = None  # None: defaults under torchrun; not written to recipe.yaml

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method: expected one of {list(METHODS)}, got {self.method!r}")
        strategy = self.distributed.strategy if self.distributed else "ddp"
        if strategy not in METHODS[self.method].strategies:
            raise ConfigError(f"distributed.strategy: method {self.method} cannot use {strategy}; it can use "
                              f"{' or '.join(METHODS[self.method].strategies)}")  # fmt: skip
        regimes = self.training_objective.regimes
        if self.data.regime not in regimes:
            wanted = " or ".join(regimes)
            raise ConfigError(f"data.regime: objective {self.train.objective} trains on {wanted} data, got "
                              f"{self.data.regime}; set data.regime: {regimes[0]}")  # fmt: skip

    @property
    def training_objective(self) -> type[Objective]:
        """The objective's class (built for a run with ``for_run``)."""
        return OBJECTIVES[self.train.objective]

    @property
    def objective_options(self) -> Any:
        """The recipe section of the objective's options, or None if it has none."""
        section = self.training_objective.section
        return getattr(self, section) if section else None

    @property
    def training_method(self) -> Method:
        """The method object (how the model is prepared, saved and merged)."""
        return METHODS[self.method]

    @property
    def uses_adapter(self) -> bool:
        return self.training_method.uses_adapter

    @property
    def eval_settings(self) -> dict[str, Any]:
        """``eval.settings`` as the evaluation takes them: an evaluation task that reads the built-in task trained on
        (``arith`` after ``data.task: arith``) draws its held-out items with ``data.task_options`` (the same level,
        the same train/test split), unless ``eval.settings.task_options`` names that task itself."""
        settings = dict(self.eval.settings)
        if self.data.task is not None and self.data.task_options:
            chosen = dict(settings.get("task_options") or {})
            chosen.setdefault(self.data.task, dict(self.data.task_options))
            settings["task_options"] = chosen
        return settings

    def check_environment(self) -> None:
        """What the recipe needs before training, checked before the model loads: the data file, LoRA ranks
        that fit the model's layers (from its config, without its weights) and a schedule that reaches its lr."""
        self.data.check_environment()
        check_installed(self.train.report_to)
        if self.train.liger_kernels:
            from loralab.models.liger import check_liger

            check_liger(self.train.device)
        train = self.train
        if train.max_steps is not None and train.warmup_steps > train.max_steps:
            say(f"loralab: warning: train.warmup_steps ({train.warmup_steps}) is more than train.max_steps "
                f"({train.max_steps}): the learning rate never reaches optimizer.lr")  # fmt: skip
        if self.uses_adapter:
            check_ranks(self.model.name, self.lora)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        """Plain values, without the sections this recipe's method and objective do not use."""
        unused = (set(METHOD_SECTIONS) - set(self.training_method.sections)) | (
            set(OBJECTIVE_SECTIONS) - {self.training_objective.section})
        if self.distributed is None:
            unused.add("distributed")
        return {key: value for key, value in as_dict(self).items() if key not in unused}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def check_ranks(model_name: str, lora: LoraConfig) -> None:
    """Refuse a LoRA rank above min(in, out) of every layer it targets, warn when above some.

    Such a rank adds parameters but no expressiveness: the update B A of a d_out × d_in layer has rank
    ≤ min(d_in, d_out). Shapes come from the model's config (no weights are read); the check is skipped
    when that config is not on this machine (a hub id not downloaded yet). Tiny test models only warn:
    they stand in for real ones to try any recipe quickly.
    """
    from loralab.lora.targets import resolve_targets
    from loralab.models.source import resolve_source

    source = resolve_source(model_name)
    skeleton = _skeleton(source)
    if skeleton is None:
        return
    targets = resolve_targets(skeleton, lora)
    over = [(t, min(t.base.weight.shape)) for t in targets if t.r > min(t.base.weight.shape)]
    if not over:
        return
    rank = max(t.r for t, _ in over)
    what = f"lora.r: rank {rank}" if rank == lora.r else f"lora.rank_pattern: rank {rank}"
    widths = ", ".join(sorted({f"{t.path.rsplit('.', 1)[-1]} {w}" for t, w in over}))
    layers = "every layer" if len(over) == len(targets) else f"{len(over)} of the {len(targets)} layers"
    message = f"{what} is above min(in, out) of {layers} it targets in {model_name} ({widths}), where it adds parameters but not rank"
    if len(over) == len(targets) and source.kind != "tiny":
        raise ConfigError(f"{message}; use r ≤ {max(w for _, w in over)}")
    say(f"loralab: warning: {message}")


def _skeleton(source: Any) -> Any:
    """The model of ``source`` with meta tensors (shapes, no weights), or None where its config cannot be read here."""
    import torch

    from loralab.models.bundled import bundled_gguf_path, bundled_model_dir
    from loralab.models.gguf import gguf_cache_folder
    from loralab.models.hub import local_snapshot
    from loralab.models.tiny import tiny_model

    if source.kind == "tiny":
        return tiny_model(source.location)  # milliseconds
    gguf = None
    if source.kind == "bundled":
        folder, gguf = bundled_model_dir(), bundled_gguf_path()
    elif source.kind == "gguf":
        gguf = Path(source.location)
        folder = gguf_cache_folder(gguf) / "model"
    elif source.kind == "hub":
        snapshot = local_snapshot(source.location)
        if snapshot is None:
            return None
        folder = Path(snapshot)
    else:
        folder = Path(source.location)
    try:
        from transformers import AutoConfig, AutoModelForCausalLM

        if (folder / "config.json").is_file() or gguf is None:
            config = AutoConfig.from_pretrained(str(folder))
        else:  # not converted yet: the GGUF's header (seconds, once; loading converts it and caches config.json)
            config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config)
    except Exception:  # an unreadable config: loading the model says what is wrong, with its own message
        return None


def recipe_from_dict(raw: Any, source: str = "recipe", saved: bool = False) -> Recipe:
    """Validate a recipe mapping section by section; errors name the key (``train.lr: ...``).

    A section the method does not use is an error; a null one counts as absent. ``saved``: the
    ``recipe.yaml`` of a run, where such sections are dropped instead (older runs wrote them all).
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a recipe is a YAML mapping of sections, got {type(raw).__name__}")
    scalars = {"name", "method", "output_dir"}
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(Recipe)})
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]}: unknown section; sections: {', '.join(f.name for f in dataclasses.fields(Recipe))}")
    top = build(_TopLevel, {k: v for k, v in raw.items() if k in scalars}, "")
    unused = [s for s in METHOD_SECTIONS if raw.get(s) is not None and s not in METHODS[top.method].sections]
    if unused and not saved:
        raise ConfigError(f"{source}: {', '.join(unused)}: not used by method {top.method}; remove "
                          f"{'it' if len(unused) == 1 else 'them'} (or override {unused[0]}=null)")  # fmt: skip
    raw = {k: v for k, v in raw.items() if k not in unused and v is not None}
    objective = _section(TrainConfig, raw["train"], "train", source).objective if "train" in raw else TrainConfig.objective
    wrong = [s for s in OBJECTIVE_SECTIONS if raw.get(s) is not None and s != OBJECTIVES[objective].section]
    if wrong and not saved:
        raise ConfigError(f"{source}: {wrong[0]}: not used by objective {objective}; remove it (or set train.objective: "
                          f"{next(o.name for o in OBJECTIVES.values() if o.section == wrong[0])})")  # fmt: skip
    raw = {k: v for k, v in raw.items() if k not in wrong}
    sections: dict[str, Any] = {}
    classes = {"model": ModelConfig, "lora": LoraConfig, "quant": QuantConfig, "data": DataConfig,
               "optimizer": OptimizerConfig, "train": TrainConfig, "dpo": PreferenceOptions, "eval": EvalConfig,
               "distributed": DistributedConfig}  # fmt: skip
    for name, cls in classes.items():
        if name in raw:
            sections[name] = _section(cls, raw[name], name, source)
    if "data" not in raw:
        raise ConfigError(f"{source}: data: missing; say what to train on (data.task or data.path)")
    try:
        return Recipe(name=top.name, method=top.method, output_dir=top.output_dir, **sections)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


@dataclass(frozen=True)
class _TopLevel:
    name: str = "run"
    method: str = "lora"
    output_dir: str = "runs"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method: expected one of {list(METHODS)}, got {self.method!r}")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"name: a run name is a plain folder name, got {self.name!r}")


def _section(cls: type, value: Any, name: str, source: str) -> Any:
    try:
        return build(cls, value, name)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = (), saved: bool = False) -> Recipe:
    """Read a YAML recipe, apply ``key=value`` overrides, validate (``saved``: see ``recipe_from_dict``)."""
    from loralab.train.overrides import apply_overrides

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {str(path)!r} not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}, line {line}: {data[err.start]:#04x}); save the recipe as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read; a recipe is sections of settings") from None
    raw = apply_overrides(raw if raw is not None else {}, overrides)
    return recipe_from_dict(raw, str(path), saved)
