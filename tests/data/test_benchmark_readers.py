"""Readers for benchmark files users bring, on small fixtures in each format, malformed rows included."""

import json
import re
from pathlib import Path

import pytest

from loralab.data import InstructionRecord, MultipleChoice
from loralab.data.benchmarks import (
    read_arc,
    read_gsm8k,
    read_hellaswag,
    read_humaneval,
    read_magicoder,
    read_metamathqa,
    read_winogrande,
)
from loralab.data.tasks import PyCodeTask, assemble_program, extract_answer
from loralab.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures"


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def test_gsm8k_answers_commas_negatives_and_annotations():
    problems = read_gsm8k(FIXTURES / "gsm8k.jsonl")
    raw = rows("gsm8k.jsonl")
    assert [p.question for p in problems] == [r["question"] for r in raw]
    for problem, row in zip(problems, raw):
        final = row["answer"].rsplit("####", 1)[1]
        assert problem.answer == int(final.strip().replace(",", ""))
        assert problem.solution.endswith(f"\n#### {problem.answer}")
        assert "<<" not in problem.solution
        assert extract_answer(problem.solution) == problem.answer
    assert [p.answer for p in problems] == [9, 1240, -3, 5]


def test_gsm8k_without_final_answer_names_line():
    with pytest.raises(DataError, match=r"gsm8k_bad\.jsonl:2: .*'#### <integer>'"):
        read_gsm8k(FIXTURES / "gsm8k_bad.jsonl")


def test_humaneval_rows_run_with_their_tests():
    problems = read_humaneval(FIXTURES / "humaneval.jsonl")
    assert [p.task_id for p in problems] == [r["task_id"] for r in rows("humaneval.jsonl")]
    for problem in problems:
        exec(assemble_program(problem, problem.canonical_solution), {})
        full_function = PyCodeTask().to_record(problem).response  # keeps the prompt's imports
        exec(assemble_program(problem, full_function), {})
        with pytest.raises(AssertionError):
            exec(assemble_program(problem, "    return None\n"), {})


def test_humaneval_missing_field():
    with pytest.raises(DataError, match=r"humaneval_bad\.jsonl:2: missing field 'entry_point'"):
        read_humaneval(FIXTURES / "humaneval_bad.jsonl")


def test_metamathqa():
    expected = [InstructionRecord(r["query"], r["response"]) for r in rows("metamathqa.jsonl")]
    assert read_metamathqa(FIXTURES / "metamathqa.jsonl") == expected


def test_magicoder_both_layouts():
    expected = [
        InstructionRecord(r.get("problem", r.get("instruction")), r.get("solution", r.get("response")))
        for r in rows("magicoder.jsonl")
    ]
    assert read_magicoder(FIXTURES / "magicoder.jsonl") == expected


def test_magicoder_empty_solution():
    with pytest.raises(DataError, match=r"magicoder_bad\.jsonl:2: field 'solution' is empty"):
        read_magicoder(FIXTURES / "magicoder_bad.jsonl")


def test_magicoder_wrong_layout_for_metamath():
    with pytest.raises(DataError, match=r"metamathqa\.jsonl:1: not a Magicoder row"):
        read_magicoder(FIXTURES / "metamathqa.jsonl")


def test_hellaswag():
    items = read_hellaswag(FIXTURES / "hellaswag.jsonl")
    for item, row in zip(items, rows("hellaswag.jsonl")):
        assert item == MultipleChoice(row["ctx"], tuple(row["endings"]), int(row["label"]))
        pairs = item.scoring_pairs()
        assert [context + continuation for context, continuation in pairs] == [row["ctx"] + " " + e for e in row["endings"]]
    assert [item.choices[item.label] for item in items] == [
        "whisks them with a fork.", "digs a small hole and plants a bulb.", "sprint down the track."
    ]  # fmt: skip


def test_hellaswag_label_out_of_range():
    with pytest.raises(DataError, match=r"hellaswag_bad\.jsonl:2: field 'label' is 5, outside the 2 choices"):
        read_hellaswag(FIXTURES / "hellaswag_bad.jsonl")


def test_arc_original_and_flat_layouts():
    items = read_arc(FIXTURES / "arc.jsonl")
    assert [item.choices[item.label] for item in items] == ["the Sun", "sunlight", "solid"]
    assert items[0].context == "Question: Which of these is a source of light?\nAnswer:"
    assert items[2].choices == ("gas", "liquid", "solid")


def test_arc_answer_key_not_a_label():
    with pytest.raises(DataError, match=r"arc_bad\.jsonl:1: answerKey 'E' is not one of the choice labels"):
        read_arc(FIXTURES / "arc_bad.jsonl")


def test_winogrande_fills_the_blank():
    items = read_winogrande(FIXTURES / "winogrande.jsonl")
    for item, row in zip(items, rows("winogrande.jsonl")):
        filled = [row["sentence"].replace("_", option) for option in (row["option1"], row["option2"])]
        assert [context + scored for context, scored in item.scoring_pairs()] == filled
        assert len({scored for _, scored in item.scoring_pairs()}) == 1  # same continuation for both options
        assert item.label == int(row["answer"]) - 1
        assert not re.search("_", item.context + item.suffix)


def test_winogrande_without_blank():
    with pytest.raises(DataError, match=r"winogrande_bad\.jsonl:2: the sentence must contain exactly one '_'"):
        read_winogrande(FIXTURES / "winogrande_bad.jsonl")


def test_winogrande_unlabelled_test_row(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({"sentence": "A _ b.", "option1": "x", "option2": "y", "answer": ""}) + "\n")
    with pytest.raises(DataError, match=r"w\.jsonl:1: field 'answer' must be a choice number"):
        read_winogrande(path)


def test_empty_benchmark_file(tmp_path):
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(DataError, match="no rows found; expected GSM8K"):
        read_gsm8k(tmp_path / "e.jsonl")
