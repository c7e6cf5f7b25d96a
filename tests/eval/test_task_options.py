"""Built-in evaluation tasks built with options (``task_options``): the level of ``arith``, the split of any task."""

import pytest

from loralab.data.tasks import get_task
from loralab.errors import ConfigError
from loralab.eval.cli import task_options
from loralab.eval.evaluate import _load_tasks, check_tasks
from loralab.eval.options import EvalOptions


def _items(task, **settings):
    _, loaded = _load_tasks([task], 6, 0, settings)
    return loaded[0][1]


def test_arith_is_evaluated_at_the_level_asked_for():
    default, level2 = _items("arith"), _items("arith", task_options={"arith": {"level": 2}})
    assert [p.question for p in default] == [p.question for p in get_task("arith").test(6, 0)]
    assert [p.question for p in level2] == [p.question for p in get_task("arith", level=2).test(6, 0)]
    assert {p.level for p in default} == {1} and {p.level for p in level2} == {2}


def test_options_of_one_task_leave_the_others_alone():
    both = _items("arith-preference", task_options={"arith": {"level": 3}})
    assert both == _items("arith-preference")
    level2 = _items("arith-preference", task_options={"arith-preference": {"level": 2}})
    assert [r.prompt for r in level2] == [get_task("arith-preference", level=2).to_record(p).prompt
                                          for p in get_task("arith-preference", level=2).test(6, 0)]  # fmt: skip
    assert level2 != both


def test_source_text_options_serve_both_source_tasks():
    short = {"task_options": {"source-text": {"passage_chars": 300}}}
    assert _items("source-ppl", **short) == _items("source-kl", **short)
    assert _items("source-ppl", **short) != _items("source-ppl")
    assert max(len(p) for p in _items("source-ppl", **short)) < max(len(p) for p in _items("source-ppl"))


@pytest.mark.parametrize("given, message", [
    ({"gsm8k": {"level": 2}}, "'gsm8k' is no built-in task"),
    ({"arith": {"level": 4}}, "arith has no level 4"),
    ({"arith": {"lvl": 2}}, "does not accept"),
    ({"arith": 2}, "a mapping of option to value"),
    ([("arith", {"level": 2})], "must map task names"),
])  # fmt: skip
def test_bad_task_options_are_one_line_config_errors(given, message):
    with pytest.raises(ConfigError, match=message):
        EvalOptions(task_options=given)
    with pytest.raises(ConfigError, match=message):
        check_tasks(["arith"], limit=1, task_options=given)


def test_cli_task_options():
    assert task_options(["arith.level=2", "source-text.passage_chars=500", "arith.test_percent=30"]) == {
        "arith": {"level": 2, "test_percent": 30}, "source-text": {"passage_chars": 500}}
    for bad in ("arith=2", "arith.level", ".level=2"):
        with pytest.raises(ConfigError, match="TASK.OPTION=VALUE"):
            task_options([bad])
