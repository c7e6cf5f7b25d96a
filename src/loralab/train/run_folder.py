"""The folder of one run, ``<output_dir>/<name>/``, and what goes where.

    recipe.yaml      the resolved recipe (what ran, overrides included)
    metrics.jsonl    one JSON record per optimiser step (step, loss, lr, grad_norm, tokens/s, memory)
    checkpoints/     step-NNNNNNNN/ (see loralab.train.checkpoint); LoRA runs add adapter/ inside
    adapter/         the final adapter in PEFT format (lora, qlora)
    model/           the final model in Hugging Face format (full)
    eval/            before.json, step-NNNNNNNN.json, final.json
    loss.png         the loss curve
    report.md        what ran, how long, what it learned and what it forgot
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.errors import ConfigError


@dataclass(frozen=True)
class RunFolder:
    path: Path

    recipe_file = property(lambda self: self.path / "recipe.yaml")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    checkpoints = property(lambda self: self.path / "checkpoints")
    adapter = property(lambda self: self.path / "adapter")
    model = property(lambda self: self.path / "model")
    eval_dir = property(lambda self: self.path / "eval")
    plot = property(lambda self: self.path / "loss.png")
    report = property(lambda self: self.path / "report.md")

    @classmethod
    def existing(cls, path: str | Path) -> "RunFolder":
        """A run folder that must already hold a recipe (for --resume, merge, analyze)."""
        folder = cls(Path(path))
        if not folder.recipe_file.is_file():
            raise ConfigError(f"{path} is not a run folder (no recipe.yaml in it)")
        return folder

    def eval_file(self, label: str) -> Path:
        return self.eval_dir / f"{label}.json"

    # -- metrics ------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.is_file():
            return []
        records = []
        for line in self.metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a kill
                break
        return records

    def keep_metrics_until(self, step: int) -> None:
        """Drop records after ``step`` (a resumed run writes them again)."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        tmp = self.metrics_file.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        tmp.replace(self.metrics_file)
