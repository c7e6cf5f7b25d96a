"""Direct preference optimisation on the objective seam: a micro-batch of P pairs → the DPO loss sum.

A preference micro-batch holds 2P rows: rows 0…P−1 are prompt + chosen response, rows P…2P−1
prompt + rejected response, in the same order, labelled on the response only (``collator``
pads them together, so one forward covers both sides). The policy's summed response
log-probabilities come from one forward with the output head applied at the labelled positions
only (:func:`~loralab.models.head.head_only_at`), never full (2P, L, vocab) logits. The reference's come from a
:class:`ReferencePolicy`:

* :class:`AdapterOff` — the same model with its adapters switched off (``loralab.disabled``):
  LoRA, rsLoRA, DoRA, QLoRA need no second copy;
* :class:`FrozenCopy` — a frozen copy of the base (full fine-tuning);
* :class:`Precomputed` — ``batch["reference_log_probs"]`` (2P,), computed once before training
  (``dpo.precompute_reference``) and kept in the run folder as :data:`REFERENCE_FILE`.

The reference is always evaluated in eval mode (no dropout), as the frozen model it stands for.

The loss per pair is :func:`~loralab.eval.preference_scores.preference_loss`, plus
``sft_weight`` × the chosen response's mean token negative log-likelihood (an RPO-style mix).
Normaliser: P. Metric sums (the step divides them by P): reward accuracy and margin, chosen and
rejected log-probabilities.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import torch
from torch import nn

from loralab.errors import ConfigError
from loralab.eval.preference_scores import preference_loss, response_log_probs
from loralab.train.objectives.base import Objective, ObjectiveOutput, RunContext
from loralab.train.schema import check_fields

#: the file in the run folder holding the precomputed reference log-probabilities, (pairs, 2)
REFERENCE_FILE = "reference_log_probs.safetensors"


@dataclass(frozen=True)
class PreferenceOptions:
    """The recipe's ``dpo`` section: β (the pull towards the reference), the loss (``sigmoid`` = DPO,
    ``ipo``), ε label smoothing (conservative DPO; sigmoid only), the SFT term's weight, and
    ``precompute_reference``: compute the reference log-probabilities once, before training, and
    keep them in the run folder (one model forward per pair during training instead of two)."""

    beta: Annotated[float, "(0, 100]"] = 0.1
    loss: Literal["sigmoid", "ipo"] = "sigmoid"
    label_smoothing: Annotated[float, "[0, 0.5)"] = 0.0
    sft_weight: Annotated[float, "[0, 100]"] = 0.0
    precompute_reference: bool = False

    def __post_init__(self) -> None:
        check_fields(self)
        if self.label_smoothing and self.loss != "sigmoid":
            raise ConfigError("label_smoothing applies to the sigmoid (DPO) loss only")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Within the block every module is in eval mode (no dropout); on exit each gets its own mode back."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


class ReferencePolicy(Protocol):
    def log_probs(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(2P,) summed response log-probabilities under the reference (no gradient)."""


class AdapterOff:
    """The reference is the trained model with every adapter switched off."""

    def log_probs(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from loralab.lora.switching import disabled

        model = getattr(model, "module", model)  # under DDP the adapters live on the wrapped model (no gradient: no DDP needed)
        with torch.no_grad(), disabled(model), eval_mode(model):
            return response_log_probs(model, batch)[0]


@dataclass
class FrozenCopy:
    """The reference is a separate frozen model (full fine-tuning has no adapter to switch off)."""

    model: nn.Module

    def log_probs(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad(), eval_mode(self.model):
            return response_log_probs(self.model, batch)[0]


class Precomputed:
    """The reference log-probabilities travel in the batch (``reference_log_probs``, (2P,))."""

    def log_probs(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "reference_log_probs" not in batch:
            raise ConfigError("this preference batch carries no precomputed reference log-probabilities")
        return batch["reference_log_probs"]


class PreferenceObjective(Objective):
    """DPO / IPO / conservative DPO with an SFT term (see the module docstring)."""

    name = "dpo"
    section = "dpo"
    options_type = PreferenceOptions
    normaliser_name = "pairs"
    regimes = ("preference",)

    def __init__(self, options: PreferenceOptions = PreferenceOptions(), reference: ReferencePolicy | None = None,
                 table: torch.Tensor | None = None) -> None:  # fmt: skip
        """``table``: precomputed reference log-probabilities (pairs, 2) [chosen, rejected], by example index."""
        self.options = options
        self.reference = reference if reference is not None else AdapterOff()
        self.table = table

    @classmethod
    def for_run(cls, options: PreferenceOptions, context: RunContext) -> PreferenceObjective:
        """The reference: the adapter switched off (adapter methods) or a frozen copy of the base (full
        fine-tuning); with ``precompute_reference``, their log-probabilities computed once (or read back)."""
        if not options.precompute_reference:
            return cls(options, AdapterOff() if context.uses_adapter else FrozenCopy(context.frozen_base()))
        return cls(options, Precomputed(), reference_table(context, cls(options).collator(context.tokenizer)))

    def training_examples(self, dataset: Any) -> Any:
        """With a precomputed reference, each pair also carries its two reference log-probabilities."""
        return dataset if self.table is None else _WithReference(dataset, self.table)

    def normaliser(self, batch: dict[str, torch.Tensor]) -> int:
        """Pairs: half the rows."""
        return int(batch["input_ids"].shape[0]) // 2

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> ObjectiveOutput:
        pairs = self.normaliser(batch)
        policy, counts = response_log_probs(model, batch)
        reference = self.reference.log_probs(model, batch).to(policy.dtype)
        terms = preference_loss(policy[:pairs], policy[pairs:], reference[:pairs], reference[pairs:],
                                self.options.beta, self.options.loss, self.options.label_smoothing)  # fmt: skip
        loss = terms.loss.sum()
        if self.options.sft_weight:
            loss = loss + self.options.sft_weight * (-policy[:pairs] / counts[:pairs].clamp(min=1)).sum()
        metrics = {  # on the device: the step reads them once
            "reward_accuracy": terms.accuracy.detach().float().sum(),
            "reward_margin": terms.margin.detach().float().sum(),
            "chosen_log_prob": policy[:pairs].detach().float().sum(),
            "rejected_log_prob": policy[pairs:].detach().float().sum(),
        }
        return ObjectiveOutput(loss, pairs, metrics)

    def collator(self, tokenizer: Any):
        """Pairs (``chosen``, ``rejected``: tokenized examples) → 2P padded rows, chosen first; with
        ``reference`` in the pairs also ``reference_log_probs`` (2P,) in the same order."""
        from loralab.data import PaddingCollator
        from loralab.data.preference import pair_rows

        pad = PaddingCollator.for_tokenizer(tokenizer)

        def collate(pairs: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
            batch = pair_rows(pad, pairs)
            if all("reference" in p for p in pairs):
                references = torch.stack([p["reference"] for p in pairs])  # (P, 2)
                batch["reference_log_probs"] = torch.cat([references[:, 0], references[:, 1]])
            return batch

        return collate


class _WithReference:
    """A preference dataset whose item i also holds ``reference`` = table[i] (2,)."""

    def __init__(self, dataset: Any, table: torch.Tensor) -> None:
        self.dataset, self.table = dataset, table
        self.stats = getattr(dataset, "stats", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.dataset[index], "reference": self.table[index]}


def reference_table(context: RunContext, collate: Any) -> torch.Tensor:
    """(pairs, 2) reference log-probabilities [chosen, rejected] of every pair of the data set.

    Read from the run folder when it holds a table of the right size (a resumed run), else computed
    with the adapter off (adapter methods), with the model itself (full fine-tuning before its first
    step) or with a frozen copy of the base (a resumed full fine-tuning), and saved there.
    """
    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm

    from loralab.outputs import atomic_write, writing

    pairs = len(context.dataset)
    path = None if context.folder is None else Path(context.folder) / REFERENCE_FILE
    if path is not None and path.is_file():
        table = load_file(str(path)).get("reference_log_probs")
        if table is not None and tuple(table.shape) == (pairs, 2) and bool(torch.isfinite(table).all()):
            return table
    if context.uses_adapter:
        policy: ReferencePolicy = AdapterOff()
    else:
        policy = FrozenCopy(context.model if context.fresh else context.frozen_base())
    device = next(context.model.parameters()).device
    rows = []
    for start in tqdm(range(0, pairs, context.batch_size), desc="reference log-probs", disable=not context.progress):
        batch = collate([context.dataset[i] for i in range(start, min(start + context.batch_size, pairs))])
        batch = {key: value.to(device) for key, value in batch.items()}
        with context.autocast():
            values = policy.log_probs(context.model, batch).float().cpu()
        half = values.shape[0] // 2
        rows.append(torch.stack([values[:half], values[half:]], dim=1))
    table = torch.cat(rows)
    if path is not None and context.fresh:
        with writing(path, f"cannot write {path}"):
            atomic_write(path, lambda tmp: save_file({"reference_log_probs": table.contiguous()}, tmp))
    return table
