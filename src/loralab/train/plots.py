"""The loss curve of a run as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_loss(records: list[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Training loss per step (and its running mean) with the learning rate on a second axis."""
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    losses = [r["loss"] for r in records]
    window = max(1, len(losses) // 20)
    smooth = [sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1]) for i in range(len(losses))]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, color="tab:blue", alpha=0.35, linewidth=1, label="loss")
    ax.plot(steps, smooth, color="tab:blue", linewidth=2, label=f"mean of {window}")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss (nats/token)")
    ax.grid(alpha=0.3)
    lr_axis = ax.twinx()
    lr_axis.plot(steps, [r["lr"] for r in records], color="tab:orange", linewidth=1, label="learning rate")
    lr_axis.set_ylabel("learning rate", color="tab:orange")
    ax.legend(loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
