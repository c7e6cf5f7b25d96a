"""A training step reads values from the device a fixed number of times, however many micro-batches it has.

On a GPU every read of a tensor's value by Python (``float(t)``, ``t.item()``, ``bool(t)``, ``t.tolist()``)
waits for the device to finish all queued work; a read per micro-batch would stall the GPU once per
micro-batch. Here the reads are counted on the CPU (the same code path) from the first forward on, by
whose code reads; the normaliser and token counts are taken from the collated batches on the host before
that, by design.
"""

import os
import sys
from collections import Counter
from contextlib import contextmanager

import torch

from loralab import LoraConfig, add_adapter
from loralab.data import PaddingCollator, build_dataset
from loralab.models import load_model
from loralab.train.objectives import SupervisedObjective
from loralab.train.objectives.dpo import PreferenceObjective
from loralab.train.step import TrainStep

READS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__")


def origin(frame_file: str) -> str:
    """Whose code read: loralab's, transformers', or torch's (e.g. AdamW's step counters, held on the host)."""
    for name in ("loralab", "transformers", "torch"):
        if f"{os.sep}{name}{os.sep}" in frame_file:
            return name
    return "other"


@contextmanager
def counted_reads():
    """(counts by (read, whose code), switch): reads of tensor values counted while ``switch["on"]``."""
    counts, switch = Counter(), {"on": False}
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def counting(name, read):
        def wrapper(self, *args, **kwargs):
            if switch["on"]:
                counts[name, origin(sys._getframe(1).f_code.co_filename)] += 1
            return read(self, *args, **kwargs)

        return wrapper

    for name, read in originals.items():
        setattr(torch.Tensor, name, counting(name, read))
    try:
        yield counts, switch
    finally:
        for name, read in originals.items():
            setattr(torch.Tensor, name, read)


class FromTheFirstForward:
    """The objective, turning the count on when the step's first forward begins."""

    def __init__(self, objective, switch):
        self.objective, self.switch = objective, switch

    def normaliser(self, batch):
        return self.objective.normaliser(batch)

    def __call__(self, model, batch):
        self.switch["on"] = True
        return self.objective(model, batch)


def adapted_tiny_llama():
    torch.manual_seed(0)
    model, tokenizer = load_model("tiny-llama")
    add_adapter(model, LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj", "lm_head"]))
    return model.train(), tokenizer


def reads_of_a_step(objective, batches) -> Counter:
    """Reads by whose code they are, from the step's first forward on."""
    model, _ = adapted_tiny_llama()
    trainable = [p for p in model.parameters() if p.requires_grad]
    with counted_reads() as (counts, switch):
        step = TrainStep(model, FromTheFirstForward(objective, switch), torch.optim.AdamW(trainable, lr=1e-3), lambda s: 1.0)
        step(0, batches)
    whose = Counter()
    for (_, code), n in counts.items():
        whose[code] += n
    return whose


def supervised_batches(data_file, micro_batches: int):
    _, tokenizer = adapted_tiny_llama()
    examples = list(build_dataset(str(data_file), tokenizer, max_length=64))[:8]
    collate = PaddingCollator.for_tokenizer(tokenizer)
    size = len(examples) // micro_batches
    return [collate(examples[i * size : (i + 1) * size]) for i in range(micro_batches)]


def preference_batches(micro_batches: int):
    from test_dpo_objective import _pairs

    model, tokenizer = adapted_tiny_llama()
    objective = PreferenceObjective()
    pairs = _pairs(model.config.vocab_size, seed=3)
    size = len(pairs) // micro_batches
    return objective, [objective.collator(tokenizer)(pairs[i * size : (i + 1) * size]) for i in range(micro_batches)]


def test_a_supervised_step_reads_the_device_a_fixed_number_of_times(data_file):
    one, four = (reads_of_a_step(SupervisedObjective(), supervised_batches(data_file, k)) for k in (1, 4))
    assert one["loralab"] == four["loralab"] <= 2, (one, four)  # the sums and norm in one read, the finite-weights check
    assert one["torch"] == four["torch"]  # AdamW's step counters (host tensors): per step, not per micro-batch
    # transformers (5.23) reads once per forward while it prepares the attention mask: whether a padding mask can
    # be skipped, or, with none, whether position ids show packed sequences; outside loralab, said in the README
    assert four["transformers"] > one["transformers"] > 0


def test_a_dpo_step_reads_the_device_as_often_as_with_one_micro_batch():
    objective, batches = preference_batches(1)
    _, split = preference_batches(2)
    one, two = reads_of_a_step(objective, batches), reads_of_a_step(objective, split)
    assert one["loralab"] == two["loralab"] <= 2, (one, two)
