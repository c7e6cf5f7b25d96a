"""Run folders → the weight matrices to analyse, (path, W_base, update), read one at a time.

A run folder (written by the trainer)::

    recipe.yaml                    model.name (loader name or path), method (lora | qlora | full), name
    adapter/                       LoRA / QLoRA: the final adapter, PEFT format
    model/                         full fine-tuning: the final model, Hugging Face format (safetensors)
    checkpoints/step-NNNNNNNN/     adapter/ (LoRA) or tensors.safetensors (full: the trainable parameters)

Every matrix here is in nn.Linear layout (d_out, d_in): GPT-2 Conv1D weights (d_in, d_out) and
embedding weights (num_embeddings, dim) are transposed, so that a LoRA update ΔW = scale · B A
(B: (d_out, r), A: (r, d_in)) lines up with W. Run folders are read with
:class:`loralab.train.runs.RunFolder`, the one reader of runs; base weights come from
:func:`loralab.models.load.weights_folder`, which owns the model-name → weights mapping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from loralab.analysis.errors import AnalysisError
from loralab.errors import LoraLabError
from loralab.linalg import thin_svd_of_product
from loralab.lora.delta import delta_weight
from loralab.lora.io import read_adapter
from loralab.lora.layout import LAYOUTS
from loralab.lora.targets import base_modules, block_index, lora_layer_type, output_head_paths
from loralab.lora.variants import VARIANTS
from loralab.models.bundled import is_bundled_name
from loralab.models.load import load_model, weights_folder
from loralab.train.methods import METHODS
from loralab.train.runs import RunFolder

_LOW_PRECISION = (torch.float16, torch.bfloat16)


# -- the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A run as analysis sees it: its folder (read with :class:`loralab.train.runs.RunFolder`), name,
    method and base model."""

    folder: Path
    name: str
    method: str
    base_model: str

    @property
    def has_adapter(self) -> bool:
        return METHODS[self.method].uses_adapter

    @property
    def run_folder(self) -> RunFolder:
        return RunFolder(self.folder)


def open_run(folder: str | Path) -> Run:
    """Read a run folder's saved recipe (its training data need not exist any more); errors say what is missing."""
    try:
        run = RunFolder.existing(folder)
        recipe = run.recipe()
    except LoraLabError as err:
        raise AnalysisError(str(err)) from None
    return Run(run.path, recipe.name, recipe.method, recipe.model.name.strip())


def same_base(a: str, b: str) -> bool:
    """Whether two base-model names name the same model (paths resolved, loader names case-insensitive)."""

    def key(name: str) -> str:
        name = name.strip()
        if is_bundled_name(name) or name.lower().startswith("tiny-"):
            return name.lower()
        path = Path(name).expanduser()
        return str(path.resolve()) if path.exists() else name

    return key(a) == key(b)


def run_checkpoints(run: Run) -> list[tuple[int, Path]]:
    """(step, folder) of the run's complete checkpoints, oldest first."""
    return run.run_folder.checkpoints()


def checkpoint_folder(run: Run, step: int) -> Path:
    """The folder of checkpoint ``step``; a missing one is an error listing those there are."""
    try:
        return run.run_folder.checkpoint(step)
    except LoraLabError as err:
        raise AnalysisError(str(err)) from None


# -- updates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LowRankUpdate:
    """ΔW = scale · B @ A with B: (d_out, r), A: (r, d_in); the d_out × d_in product is formed only by ``dense``."""

    A: torch.Tensor
    B: torch.Tensor
    scale: float

    @property
    def shape(self) -> tuple[int, int]:
        return (self.B.shape[0], self.A.shape[1])

    @property
    def rank_bound(self) -> int:
        return self.A.shape[0]

    def dense(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return delta_weight(self.A.to(dtype), self.B.to(dtype), self.scale)

    def svd(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Thin SVD from the factors: U (d_out, r), S (r,), Vh (r, d_in), in O((d_out + d_in) r²)."""
        return thin_svd_of_product(self.B.to(dtype) * self.scale, self.A.to(dtype))

    def singular_values(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self.svd(dtype)[1]


@dataclass(frozen=True)
class DenseUpdate:
    """ΔW = W_ft − W_base as a dense (d_out, d_in) matrix (full fine-tuning)."""

    delta: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.delta.shape)

    @property
    def rank_bound(self) -> int:
        return min(self.delta.shape)

    def dense(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self.delta.to(dtype)

    def svd(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Thin SVD: U (d_out, k), S (k,), Vh (k, d_in), k = min(d_out, d_in)."""
        return torch.linalg.svd(self.delta.to(dtype), full_matrices=False)

    def singular_values(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.linalg.svdvals(self.delta.to(dtype))


Update = LowRankUpdate | DenseUpdate


@dataclass(frozen=True)
class VariantUpdate:
    """An adapter whose ΔW depends on W (DoRA): W' = the variant's merged weight, ΔW = W' − W, dense."""

    A: torch.Tensor
    B: torch.Tensor
    scale: float
    variant: str
    params: dict

    @property
    def shape(self) -> tuple[int, int]:
        return (self.B.shape[0], self.A.shape[1])

    def for_base(self, W: torch.Tensor) -> DenseUpdate:
        """ΔW = W' − W for the base weight W (d_out, d_in), float32."""
        delta = delta_weight(self.A.float(), self.B.float(), self.scale)
        merged, _ = VARIANTS[self.variant].merged_weight(W.float(), delta, {k: v.float() for k, v in self.params.items()})
        return DenseUpdate(merged - W.float())


def _for_base(update, W_of, path: str, base: str) -> Update:
    """The update as analysed: low-rank ones as they are; one that depends on W gets it from ``W_of()``."""
    if not isinstance(update, VariantUpdate):
        return update
    W = W_of()
    _check_shape(path, update.shape, W, base)
    return update.for_base(W)


@dataclass(frozen=True)
class Matrix:
    """One module: its base weight W (d_out, d_in), float32, and its update."""

    path: str
    W: torch.Tensor
    update: Update


# -- tensors in safetensors files ------------------------------------------------------------


class SafetensorsStore:
    """Named tensors in one or more ``.safetensors`` files, read one at a time (memory-mapped)."""

    def __init__(self, files: dict[str, Path], label: str):
        self.files, self.label = files, label

    @classmethod
    def from_file(cls, path: Path) -> SafetensorsStore:
        from safetensors import safe_open

        if not path.is_file():
            raise AnalysisError(f"{path} does not exist")
        try:
            with safe_open(str(path), "pt") as handle:
                keys = list(handle.keys())
        except Exception as err:  # noqa: BLE001 — any failure to read means the same to the user
            raise AnalysisError(f"{path} cannot be read; it may be truncated or corrupt ({err})") from None
        return cls({key: path for key in keys}, str(path))

    @classmethod
    def from_model_folder(cls, folder: Path) -> SafetensorsStore:
        """A Hugging Face model folder: ``model.safetensors`` or shards listed in ``model.safetensors.index.json``."""
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise AnalysisError(f"{index} is not a safetensors index ({err})") from None
            missing = sorted({f for f in weight_map.values() if not (folder / f).is_file()})
            if missing:
                raise AnalysisError(f"{folder} lacks the shard(s) {', '.join(missing)} listed in its index")
            return cls({key: folder / name for key, name in weight_map.items()}, str(folder))
        if (folder / "model.safetensors").is_file():
            return cls.from_file(folder / "model.safetensors")
        pickled = any(folder.glob("pytorch_model*.bin"))
        raise AnalysisError(
            f"{folder} has no model.safetensors"
            + (" (only pytorch_model*.bin, pickles, which loralab never loads)" if pickled else "")
        )

    def __contains__(self, key: str) -> bool:
        return key in self.files

    def get(self, key: str) -> torch.Tensor:
        from safetensors import safe_open

        try:
            with safe_open(str(self.files[key]), "pt") as handle:
                return handle.get_tensor(key)
        except Exception as err:  # noqa: BLE001
            raise AnalysisError(f"{self.files[key]}: tensor {key} cannot be read ({err})") from None


# -- the base model -----------------------------------------------------------------------------


class BaseWeights:
    """The base model's 2-D weights by module path, float32, (d_out, d_in); loaded on first use.

    A local Hugging Face folder (or the float32 cache of the bundled model or of a converted GGUF
    file) is read lazily, one tensor at a time; the module types come from a skeleton built on the
    meta device. Anything else ``load_model`` loads (``tiny-*``, hub ids, GGUF files not yet
    converted) is loaded whole, in float32.
    """

    def __init__(self, name: str):
        self.name = name
        self._kinds: dict[str, str] | None = None  # path → "linear" | "conv1d" | "embedding" | "head"
        self._read = None

    def _load(self) -> None:
        if self._kinds is not None:
            return
        folder = weights_folder(self.name)
        if folder is not None:
            from transformers import AutoConfig, AutoModelForCausalLM

            store = SafetensorsStore.from_model_folder(folder)
            with torch.device("meta"):
                skeleton = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(folder)))
            self._kinds = _module_kinds(skeleton)
            self._read = lambda key: store.get(key) if key in store else None
        else:
            model, _ = load_model(self.name, dtype="float32")
            self._kinds = _module_kinds(model)
            params = dict(model.state_dict())
            self._read = params.get

    def linear_paths(self) -> list[str]:
        """Paths of the Linear / Conv1D modules, the output head excluded, in model order."""
        self._load()
        return [path for path, kind in self._kinds.items() if kind in ("linear", "conv1d")]

    def in_model_order(self, paths: list[str]) -> list[str]:
        """``paths`` ordered as the model's modules (unknown ones last)."""
        self._load()
        position = {path: i for i, path in enumerate(self._kinds)}
        return sorted(paths, key=lambda p: (position.get(p, len(position)), natural_key(p)))

    def weight(self, path: str) -> torch.Tensor:
        """W of module ``path`` in (d_out, d_in) layout, float32."""
        self._load()
        kind = self._kinds.get(path)
        tensor = self._read(f"{path}.weight") if kind is not None else None
        if tensor is None:
            raise AnalysisError(
                f"the base model {self.name} has no weight matrix {path}; the run was trained on another base model "
                "(name the right one with --base)"
            )
        return self.canonical(path, tensor).float()

    def canonical(self, path: str, tensor: torch.Tensor) -> torch.Tensor:
        """A stored weight of module ``path`` in (d_out, d_in) layout (Conv1D and embeddings transposed)."""
        self._load()
        layout = LAYOUTS.get(self._kinds.get(path, ""))
        return tensor.T if layout is not None and layout.transposed else tensor


def _module_kinds(model: torch.nn.Module) -> dict[str, str]:
    """path → the factor layout's kind ("linear" | "conv1d" | "embedding") of every module LoRA can wrap, or "head"."""
    heads = output_head_paths(model)
    kinds = {}
    for path, module in base_modules(model):
        wrapper = lora_layer_type(module)
        if wrapper is not None:
            kinds[path] = "head" if path in heads else wrapper.layout.kind
    return kinds


# -- one state of a run: its final weights or one checkpoint ------------------------------------


class RunState:
    """The updates of one state of a run (final, or checkpoint ``step``), by module path, read lazily.

    ``paths`` lists the modules (filtered by the regex ``modules``, searched in the path).
    ``update(path)`` is ΔW (for full fine-tuning it reads W_ft and W_base); ``matrix(path)`` adds W.
    """

    def __init__(self, run: Run, base: BaseWeights, step: int | None = None, modules: str | None = None):
        self.run, self.base, self.step = run, base, step
        where = checkpoint_folder(run, step) if step is not None else run.folder
        self.label = f"{run.name} step {step}" if step is not None else f"{run.name} (final)"
        self._lora: dict[str, LowRankUpdate] | None = None
        if run.has_adapter:
            folder = where / "adapter"
            if not folder.is_dir():
                hint = "" if step is not None else " (has the run finished? analyse a checkpoint with --step N)"
                raise AnalysisError(f"run {run.folder} ({run.method}) has no adapter at {folder}{hint}")
            self._lora = _read_updates(folder)
            paths = sorted(self._lora, key=natural_key)
        else:
            self._store = self._full_store(where, step)
            paths = [p for p in base.linear_paths() if f"{p}.weight" in self._store]
            if not paths:
                raise AnalysisError(
                    f"{self._store.label} holds no weight of a linear layer of the base model {base.name}; "
                    "the run was trained on another base model (name the right one with --base)"
                )
        self.paths = _filter(paths, modules, self.label)

    def _full_store(self, where: Path, step: int | None) -> SafetensorsStore:
        if step is not None:
            return SafetensorsStore.from_file(where / "tensors.safetensors")
        folder = where / "model"
        if not folder.is_dir():
            raise AnalysisError(f"run {self.run.folder} (full fine-tuning) has no final model at {folder} (has the run finished? analyse a checkpoint with --step N)")
        return SafetensorsStore.from_model_folder(folder)

    def __len__(self) -> int:
        return len(self.paths)

    def update(self, path: str) -> Update:
        if self._lora is not None:
            return _for_base(self._lora[path], lambda: self.base.weight(path), path, self.base.name)
        return self._dense_update(path, self.base.weight(path))

    def _dense_update(self, path: str, W: torch.Tensor) -> DenseUpdate:
        tuned = self.base.canonical(path, self._store.get(f"{path}.weight"))
        _check_shape(path, tuple(tuned.shape), W, self.base.name)
        # A 16-bit run started from the 16-bit rounding of W: subtracting the float32 W would add that rounding to ΔW.
        start = W.to(tuned.dtype).float() if tuned.dtype in _LOW_PRECISION else W
        return DenseUpdate(tuned.float() - start)

    def matrix(self, path: str) -> Matrix:
        W = self.base.weight(path)
        if self._lora is not None:
            _check_shape(path, self._lora[path].shape, W, self.base.name)
            return Matrix(path, W, _for_base(self._lora[path], lambda: W, path, self.base.name))
        return Matrix(path, W, self._dense_update(path, W))

    def matrices(self) -> Iterator[Matrix]:
        """The matrices in the model's module order, one at a time."""
        for path in self.base.in_model_order(self.paths):
            yield self.matrix(path)


def _read_updates(folder: Path) -> dict[str, LowRankUpdate | VariantUpdate]:
    """The update of every module of a PEFT-format adapter folder: ΔW = scale · B A for plain LoRA; for a
    variant with its own tensors (DoRA), what it needs to form ΔW once W is known."""
    try:
        file_config, factors, _ = read_adapter(folder)
    except LoraLabError as err:
        raise AnalysisError(str(err)) from None
    if not factors:
        raise AnalysisError(f"the adapter {folder} holds no LoRA factors")
    variant = VARIANTS[file_config.lora.variant]
    if variant.low_rank:
        return {p: LowRankUpdate(f.A, f.B, file_config.lora.scale_for(p)) for p, f in factors.items()}
    return {p: VariantUpdate(f.A, f.B, file_config.lora.scale_for(p), variant.name,
                             {param: f.variant_tensors[key] for param, key in variant.file_keys.items()})
            for p, f in factors.items()}  # fmt: skip


def _check_shape(path: str, shape: tuple[int, int], W: torch.Tensor, base: str) -> None:
    if tuple(shape) != tuple(W.shape):
        raise AnalysisError(
            f"{path}: the run's weight is {tuple(shape)} (d_out, d_in) but the base model {base} has {tuple(W.shape)}; "
            "the run was trained on another base model (name the right one with --base)"
        )


def _filter(paths: list[str], modules: str | None, label: str) -> list[str]:
    if modules is None:
        return paths
    try:
        pattern = re.compile(modules)
    except re.error as err:
        raise AnalysisError(f"--modules {modules!r} is not a valid regular expression ({err})") from None
    kept = [p for p in paths if pattern.search(p)]
    if not kept:
        raise AnalysisError(f"--modules {modules!r} matches none of the {len(paths)} modules of {label} (e.g. {paths[0]})")
    return kept


def natural_key(path: str) -> list:
    """Sort key ordering ``layers.2`` before ``layers.10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def module_type(path: str) -> str:
    """The module's last name (``q_proj``), which names its type across layers."""
    return path.rsplit(".", 1)[-1]


def layer_index(path: str) -> int | None:
    """The block the module belongs to (the first integer in its path), or None."""
    return block_index(path)


class PathNamed:
    """For per-module results with a ``path``: its module type and layer index."""

    path: str

    @property
    def module_type(self) -> str:
        return module_type(self.path)

    @property
    def layer(self) -> int | None:
        return layer_index(self.path)
