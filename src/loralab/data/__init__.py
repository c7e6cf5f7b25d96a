"""Training data: file formats, tokenization with a response-only loss mask, packing, batching, tasks.

Entry points: :func:`build_dataset` (path or records -> :class:`TokenizedDataset`),
:func:`build_preference_dataset` (preference pairs -> :class:`PreferenceDataset`),
:func:`load_records`, :class:`PaddingCollator`, :func:`pack_documents`, and
:func:`loralab.data.tasks.get_task` for the built-in tasks.
"""

from loralab.data.collate import PaddingCollator
from loralab.data.dataset import TokenizedDataset, build_dataset
from loralab.data.load import load_records
from loralab.data.packing import PackedBlocks, pack_documents
from loralab.data.preference import (
    PreferenceDataset,
    PreferenceStats,
    build_preference_dataset,
    load_preference_records,
)
from loralab.data.problems import CodeProblem, MathProblem, MultipleChoice
from loralab.data.records import (
    IGNORE_INDEX,
    ChatRecord,
    CompletionRecord,
    InstructionRecord,
    Message,
    PreferenceRecord,
    Record,
    TextRecord,
    TokenizedExample,
)
from loralab.data.render import generation_prompt
from loralab.data.stats import BuildStats

__all__ = [
    "IGNORE_INDEX",
    "BuildStats",
    "ChatRecord",
    "CodeProblem",
    "CompletionRecord",
    "InstructionRecord",
    "MathProblem",
    "Message",
    "MultipleChoice",
    "PackedBlocks",
    "PaddingCollator",
    "PreferenceDataset",
    "PreferenceRecord",
    "PreferenceStats",
    "Record",
    "TextRecord",
    "TokenizedDataset",
    "TokenizedExample",
    "build_dataset",
    "build_preference_dataset",
    "generation_prompt",
    "load_preference_records",
    "load_records",
    "pack_documents",
]
