"""Held-out preference pairs (``arith-preference``, ``pref:F``): does the model prefer the chosen answer?

For each pair the policy's and the reference's summed response log-probabilities give the implicit
rewards r = β(log π − log π_ref) of the chosen and the rejected answer (β = ``options.beta``). The
reference is the model with its adapters switched off, or ``reference`` (full fine-tuning). Reported:
reward accuracy (share of pairs with r_chosen > r_rejected; 0 for the base itself, where both are 0),
reward margin (mean r_chosen − r_rejected) and the DPO loss −log σ(margin) (log 2 for the base), with
standard errors over pairs; details: mean chosen and rejected log-probabilities under both models.
"""

from __future__ import annotations

from typing import Any

import torch

from loralab.data import PaddingCollator, build_preference_dataset
from loralab.data.preference import pair_rows
from loralab.eval.options import EvalOptions
from loralab.eval.preference_scores import preference_loss, response_log_probs
from loralab.eval.result import TaskResult
from loralab.eval.stats import mean_stderr
from loralab.eval.tasks.progress import bar
from loralab.eval.tasks.spec import TaskSpec

#: longest side of a pair, in tokens (a pair whose answer this cuts away is left out)
PAIR_MAX_LENGTH = 1024


def run_preference(model: Any, tokenizer: Any, spec: TaskSpec, records: list, options: EvalOptions,
                   reference: Any = None) -> list[TaskResult]:  # fmt: skip
    from loralab.lora.switching import disabled

    pairs = build_preference_dataset(records, tokenizer, max_length=PAIR_MAX_LENGTH)
    pad = PaddingCollator.for_tokenizer(tokenizer)
    device = next(model.parameters()).device
    columns: dict[str, list[torch.Tensor]] = {"policy": [], "reference": []}
    size = options.score_batch_size
    with bar(len(pairs), f"{spec.name} score", options.progress) as progress, torch.no_grad():
        for start in range(0, len(pairs), size):
            chunk = [pairs[i] for i in range(start, min(start + size, len(pairs)))]
            batch = pair_rows(pad, chunk)
            batch = {key: value.to(device) for key, value in batch.items()}
            columns["policy"].append(response_log_probs(model, batch)[0].double().cpu().view(2, -1))
            if reference is not None:
                base = response_log_probs(reference, batch)[0]
            else:
                with disabled(model):
                    base = response_log_probs(model, batch)[0]
            columns["reference"].append(base.double().cpu().view(2, -1))
            progress.update(len(chunk))
    policy, base = torch.cat(columns["policy"], 1), torch.cat(columns["reference"], 1)  # (2, pairs): chosen, rejected
    terms = preference_loss(policy[0], policy[1], base[0], base[1], options.beta, "sigmoid", 0.0)
    details = {"pairs": len(pairs), "dropped": pairs.stats.dropped, "beta": options.beta,
               "chosen_log_prob": float(policy[0].mean()), "rejected_log_prob": float(policy[1].mean()),
               "reference_chosen_log_prob": float(base[0].mean()), "reference_rejected_log_prob": float(base[1].mean())}  # fmt: skip
    n = len(pairs)
    metrics = (("reward_accuracy", terms.accuracy, True), ("reward_margin", terms.margin, True), ("dpo_loss", terms.loss, False))
    return [TaskResult(spec.name, name, float(values.mean()), mean_stderr(values.tolist()), n, 0.0, "target", better, details)
            for name, values, better in metrics]  # fmt: skip
