"""Learning vs forgetting over trials: paths, orientation and the Pareto front, by hand."""

from pathlib import Path

from loralab.studies.report import ReportInputs, write_report
from loralab.studies.tradeoff import plot_trade_off, trade_off


def report_markdown(name, rows, status, varied, folder):
    write_report(ReportInputs(name, rows, varied, status), folder, lambda path, text: Path(path).write_text(text))
    return (folder / "report.md").read_text()


def _rows(trial, points, varied=None):
    """points: [(step, accuracy, kl, perplexity)]."""
    rows = []
    for step, acc, kl, ppl in points:
        base = {"trial": trial, "status": "done", "step": str(step), **(varied or {})}
        rows.append({**base, "task": "arith", "metric": "accuracy", "domain": "target", "higher_is_better": "True", "value": str(acc)})
        rows.append({**base, "task": "source-kl", "metric": "kl_to_base", "domain": "source", "higher_is_better": "False", "value": str(kl)})
        rows.append({**base, "task": "source-ppl", "metric": "perplexity", "domain": "source", "higher_is_better": "False", "value": str(ppl)})
    return rows


ROWS = (_rows("lora", [(0, 0.2, 0.0, 18), (8, 0.5, 0.02, 18.2), (16, 0.6, 0.04, 18.4)], {"method": "lora"})
        + _rows("full", [(0, 0.2, 0.0, 18), (16, 0.8, 0.30, 21.0)], {"method": "full"})
        + _rows("bad", [(0, 0.2, 0.0, 18), (16, 0.55, 0.35, 22.0)], {"method": "lora"}))  # fmt: skip


def test_paths_use_kl_and_the_front_excludes_dominated_trials():
    result = trade_off(ROWS)
    assert result.forgetting.metric == "kl_to_base" and result.learning.metric == "accuracy"
    assert result.paths["lora"] == [(0, 0.0, 0.2), (8, 0.02, 0.5), (16, 0.04, 0.6)]
    assert result.front == ["lora", "full"]  # "bad" learns less than full and forgets more


def test_without_kl_perplexity_measures_forgetting():
    rows = [r for r in ROWS if r["metric"] != "kl_to_base"]
    result = trade_off(rows)
    assert result.forgetting.metric == "perplexity" and result.paths["full"][-1] == (16, 21.0, 0.8)


def test_report_and_plot(tmp_path):
    status = {"lora": {"status": "done"}, "full": {"status": "done"}, "bad": {"status": "done"},
              "broken": {"status": "failed", "error": "DataError: no file"}}  # fmt: skip
    text = report_markdown("demo", ROWS, status, ["method"], tmp_path)
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| trial | method | final step | arith accuracy | source-kl kl_to_base | on the front |"
    assert table[1] == "| full | full | 16 | 0.8 | 0.3 | yes |"  # best learning first
    assert "| bad | lora | 16 | 0.55 | 0.35 |  |" in table
    assert "Pareto front (least forgetting first): lora, full." in text and "`broken`: DataError: no file" in text
    assert (tmp_path / "learning_vs_forgetting.png").is_file() and (tmp_path / "learning_curves.png").is_file()
    assert "| method | marginal | 0.225 |" in text  # sensitivity: full 0.8 against lora's mean (0.6 + 0.55) / 2
    png = plot_trade_off(trade_off(ROWS), tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_compare_without_both_domains(tmp_path):
    only_target = [r for r in ROWS if r["domain"] == "target"]
    assert trade_off(only_target) is None
    assert "nothing to compare" in report_markdown("demo", only_target, {}, [], tmp_path)
