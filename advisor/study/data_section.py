"""The `data:` section of a study file: the train, eval and replay files, their layout and
fields, and a retrieval method's knowledge source.

Apart from the other sections (`sections.py`) because it is the one that names files: every
path is resolved against the study file's folder and must stay inside `data.root`
(`files.escapes_root`), the rules the readers in `runners` (datafiles, layouts, knowledge) then
rely on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from runners.datafiles import SUFFIXES
from runners.knowledge import SUFFIXES as KNOWLEDGE_SUFFIXES
from runners.layouts import LAYOUTS

from .files import escapes_root
from .space import PositiveInt, Section, rule, shown


def resolve_path(value: str, info: ValidationInfo) -> str:
    """A path of the study file as the study's folder reads it (`base_dir` in the context)."""
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    return str(path) if base is not None else value


DATA_SUFFIXES = tuple(SUFFIXES)
"""The data files' types (`runners.datafiles`, the one reader); a folder written by
`datasets.Dataset.save_to_disk` is read too."""
_DATA_KINDS = "a .jsonl, .json, .csv or .parquet file, or a folder written by save_to_disk"


class ReplaySpec(Section):
    """General instruction data mixed into training, so that trials forget less of what the base
    model could do (`runners.data.training_set`)."""

    path: str = Field(
        description=f"General instructions with responses: {_DATA_KINDS}, in any chat layout, "
        "inside data.root; relative to the study file (e.g. data/general_replay.jsonl)."
    )
    fraction: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Replay share of the training mixture, [0, 1), e.g. 0.05 or 0.1: "
        "round(f x task examples / (1 - f)) rows, drawn with the study's seed. Or search it with "
        "search.replay_fraction (then leave this out).",
    )
    prompt_field: str = Field("prompt", description="Key holding the request in the replay file.")
    response_field: str = Field("response", description="Key holding the answer.")


class DataSpec(Section):
    """Local train/eval files, their layout, and the fields holding prompt and response.

    The files must lie inside `root` (symlinks followed): a study file shared with a team cannot
    make trials read, and log as data, a file elsewhere on the machine.
    """

    root: str | None = Field(
        None,
        description="Folder the data files must resolve inside (symlinks followed); relative to "
        "the study file's folder, which is the default.",
    )
    train: str = Field(description=f"Training examples: {_DATA_KINDS}.")
    eval: str = Field(
        description="Held-out examples for the eval loss and the task metric, of the same kind "
        "as train (chat or raw text)."
    )
    format: Literal[tuple(LAYOUTS)] | None = Field(  # type: ignore[valid-type]
        None,
        description="The rows' layout: messages ({role, content} turns), sharegpt "
        "(conversations of {from, value}), alpaca (instruction, input, output), "
        "prompt_completion (trl's), prompt_response (prompt_field and response_field), or text "
        "(raw text for continued pre-training). Leave it out to detect it from the rows.",
    )
    packing: bool = Field(
        False,
        description="Raw text only (the text layout): concatenate the documents and cut them "
        "into train.max_seq_length blocks, so no step is spent on padding.",
    )
    prompt_field: str = Field(
        "prompt", description="Column/key holding the user's request (prompt_response layout)."
    )
    response_field: str = Field(
        "response", description="Column/key holding the wanted answer (prompt_response layout)."
    )
    system_prompt: str | None = Field(None, description="System message put before every prompt.")
    max_train_examples: PositiveInt | None = Field(
        None, description="Use only the first N (1 .. 2^31-1)."
    )
    max_eval_examples: PositiveInt | None = Field(
        None, description="Evaluate only the first N (1 .. 2^31-1)."
    )
    allow_pii: bool = Field(
        False,
        description="Tune even though `advisor scan` finds personal data (e-mail addresses, phone "
        "numbers, ID or card numbers, IP addresses) in the train or eval file. Say why in the "
        "study's description (e.g. synthetic values).",
    )
    replay: ReplaySpec | None = Field(
        None, description="Mix general instruction data into training: {path, fraction}."
    )
    knowledge: str | None = Field(
        None,
        description="Documents the retrieval methods (rag, rag_lora) answer from: a "
        f"{', '.join(KNOWLEDGE_SUFFIXES)} file (JSONL and Parquet: one document per record, in "
        "its `text` field), or a folder of them read recursively in sorted order; inside "
        "data.root, relative to the study file.",
    )

    @field_validator("train", "eval")
    @classmethod
    def _data_file(cls, value: str, info: ValidationInfo) -> str:
        path = resolve_path(value, info)
        if not value.lower().endswith(DATA_SUFFIXES) and not os.path.isdir(path):
            raise rule(
                f"data file {shown(value)} must end in {', '.join(DATA_SUFFIXES)}, or be a "
                "folder written by datasets.Dataset.save_to_disk",
                "convert it to JSON Lines (one object per line), CSV with a header or Parquet, "
                "or name the saved dataset's folder",
            )
        root = info.data.get("root")
        if root is not None and escapes_root(path, root):
            raise rule(
                f"data file {shown(value)} resolves to {Path(path).resolve()}, outside the data "
                f"root {Path(root).resolve()}",
                "move the file under the data root, or set data.root to a folder that holds it",
            )
        return path

    @field_validator("replay")
    @classmethod
    def _replay_file(cls, value: ReplaySpec | None, info: ValidationInfo) -> ReplaySpec | None:
        """The replay file obeys the same rules as train and eval (type, data.root)."""
        if value is None:
            return None
        return value.model_copy(update={"path": cls._data_file(value.path, info)})

    @field_validator("knowledge")
    @classmethod
    def _knowledge(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A knowledge source lies inside data.root, as the data files do; its suffix and its
        documents are checked with the files (`advisor.study.files`)."""
        if value is None:
            return None
        path = resolve_path(value, info)
        root = info.data.get("root")
        if root is not None and escapes_root(path, root):
            raise rule(
                f"knowledge {shown(value)} resolves to {Path(path).resolve()}, outside the data "
                f"root {Path(root).resolve()}",
                "move the documents under the data root, or set data.root to a folder that "
                "holds them",
            )
        return path

    @field_validator("root")
    @classmethod
    def _root(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Default: the study file's folder (filled in, so a dumped spec keeps its root)."""
        base = (info.context or {}).get("base_dir")
        if value is None:
            return None if base is None else str(base)
        path = resolve_path(value, info)
        if base is not None and not os.path.isdir(path):  # False, not a raise, for a link loop
            raise rule(f"data root {path} is not a folder", "create it, or fix data.root")
        return path
