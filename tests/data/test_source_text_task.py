"""source-text: cleaned prose passages from pydoc_data.topics, split deterministically."""

import pytest
from pydoc_data.topics import topics

from loralab.data import TextRecord
from loralab.data.tasks import SourceTextTask
from loralab.data.tasks.source_text import prose_paragraphs
from loralab.errors import DataError


def test_passages_are_prose_of_roughly_the_requested_size():
    task = SourceTextTask(passage_chars=800)
    passages = task.train() + task.test()
    assert len(passages) > 100
    for passage in passages:
        assert isinstance(passage, TextRecord)
        assert len(passage.text) >= 200
        assert "****" not in passage.text and "\n   " not in passage.text
    lengths = sorted(len(p.text) for p in passages)
    assert 600 <= lengths[len(lengths) // 2] <= 1600


def test_text_comes_from_the_documentation():
    corpus = " ".join(" ".join(text.split()) for text in topics.values())
    for passage in SourceTextTask().test()[:20]:
        for paragraph in passage.text.split("\n\n"):
            assert paragraph in corpus


def test_headings_and_code_are_removed():
    sample = 'The "x" statement\n*****************\n\nIt is used\nlike this:\n\n   x = 1\n\nDone here.\n'
    assert prose_paragraphs(sample) == ["Done here."]


def test_split_is_deterministic_and_disjoint():
    task = SourceTextTask()
    train, test = task.train(), task.test()
    assert train == SourceTextTask().train() and test == SourceTextTask().test()
    assert not {p.text for p in train} & {p.text for p in test}
    assert 0.1 < len(test) / (len(train) + len(test)) < 0.35


def test_seeded_subsets():
    task = SourceTextTask()
    assert task.test(10, seed=1) == task.test(10, seed=1)
    assert task.test(10, seed=1) != task.test(10, seed=2)
    assert set(p.text for p in task.train(25, seed=3)) <= {p.text for p in task.train()}


def test_too_many_passages():
    with pytest.raises(DataError, match=r"source-text has \d+ test passages"):
        SourceTextTask().test(10**6)
