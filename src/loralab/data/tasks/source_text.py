"""The ``source-text`` task: English prose from Python's own documentation, for measuring forgetting.

Every Python installation ships ``pydoc_data.topics.topics``, a dict of
reference-manual texts. Headings and indented blocks (code, grammar) are
removed, and so are the unfinished sentences that introduced them; the
remaining paragraphs are unwrapped to one line each and grouped, within a
topic, into passages of about ``passage_chars`` characters (a topic with less
than a quarter of that is skipped).
Passages are split into train and held-out sides by a hash of their text.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar
from functools import cache

from loralab.data.records import TextRecord
from loralab.data.tasks.split import is_test_key
from loralab.errors import DataError

UNDERLINE = re.compile(r"^[*=\-~^]{3,}$")


@dataclass(frozen=True)
class SourceTextTask:
    """Held-out prose for perplexity before and after fine-tuning.

    ``train(n, seed)`` / ``test(n, seed)`` give ``n`` passages of their side
    chosen by ``seed`` (all of them, in document order, when ``n`` is None).
    """

    passage_chars: int = 1000
    test_percent: int = 20
    name: ClassVar[str] = "source-text"
    description: ClassVar[str] = "English prose from Python's bundled documentation (pydoc_data.topics)"

    def train(self, n: int | None = None, seed: int = 0) -> list[TextRecord]:
        """Training-side passages."""
        return self._pick(n, seed, "train")

    def test(self, n: int | None = None, seed: int = 0) -> list[TextRecord]:
        """Held-out passages."""
        return self._pick(n, seed, "test")

    def to_record(self, passage: TextRecord) -> TextRecord:
        """Passages are already raw-text records."""
        return passage

    def _pick(self, n: int | None, seed: int, split: str) -> list[TextRecord]:
        pool = [p for p in passages(self.passage_chars) if is_test_key(p, self.test_percent) == (split == "test")]
        if n is None:
            return [TextRecord(text) for text in pool]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(pool):
            raise DataError(f"source-text has {len(pool)} {split} passages; ask for 0 to {len(pool)}, got {n!r}.")
        chosen = random.Random(f"source-text/{seed}/{split}").sample(range(len(pool)), n)
        return [TextRecord(pool[index]) for index in sorted(chosen)]


@cache
def passages(passage_chars: int) -> tuple[str, ...]:
    """All passages of the bundled documentation, in topic order."""
    from pydoc_data.topics import topics

    result: list[str] = []
    for name in sorted(topics):
        result.extend(_group(prose_paragraphs(topics[name]), passage_chars))
    return tuple(result)


def prose_paragraphs(text: str) -> list[str]:
    """Unwrapped prose paragraphs of one topic: no headings, indented blocks, or their introductions."""
    blocks = [_lines(block) for block in re.split(r"\n\s*\n", text)]
    blocks = [lines for lines in blocks if lines]
    paragraphs = []
    for index, lines in enumerate(blocks):
        if _indented(lines) or UNDERLINE.match(lines[-1].strip()):
            continue
        introduces_block = index + 1 < len(blocks) and _indented(blocks[index + 1])
        if introduces_block and not lines[-1].endswith((".", "!", "?", '"', ")")):
            continue
        paragraphs.append(" ".join(" ".join(line.split()) for line in lines))
    return paragraphs


def _lines(block: str) -> list[str]:
    return [line.rstrip() for line in block.strip("\n").splitlines() if line.strip()]


def _indented(lines: list[str]) -> bool:
    return lines[0][:1].isspace()


def _group(paragraphs: list[str], passage_chars: int) -> list[str]:
    groups: list[str] = []
    current: list[str] = []
    for paragraph in paragraphs:
        current.append(paragraph)
        if sum(len(part) for part in current) >= passage_chars:
            groups.append("\n\n".join(current))
            current = []
    if current:
        rest = "\n\n".join(current)
        if len(rest) >= passage_chars // 4:
            groups.append(rest)
        elif groups:
            groups[-1] += "\n\n" + rest
    return groups
