"""Data as users have it, refused when it cannot train: each row runs through `advisor validate`
AND `advisor tune`, which must refuse it alike (exit 2, the file and row or the field named, a
fix, nothing written: `bad_input.py`), since validate runs every check tune runs first.

The rows cover the layouts (`runners.layouts`: a conversation without an assistant turn, an
unknown role, a turn that is not text, an empty document, rows in no layout or in two), the
containers (Parquet, a 0-byte file, a folder that is no saved dataset), the study's keys
(`data.format`, `data.packing`, `model.chat_template`) and the rules across the data's kind and
the metric (`advisor.study.layouts`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bad_input import Bad, bad, check_refused, write


def jsonl(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def chat(*turns: tuple[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


GOOD_CHAT = chat(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"))
TEXT = {"text": "A document of raw text, for continued pre-training."}


def texts(name: str = "train.jsonl", *extra: dict[str, Any]) -> Callable[[Path], None]:
    """Raw-text train and eval files (`name` gets `extra` rows after a good one)."""

    def prepare(project: Path) -> None:
        (project / "eval.jsonl").write_text(jsonl(TEXT, TEXT), encoding="utf-8")
        (project / name).write_text(jsonl(TEXT, *extra), encoding="utf-8")

    return prepare


def parquet(name: str, rows: list[dict[str, Any]]) -> Callable[[Path], None]:
    def prepare(project: Path) -> None:
        import pyarrow
        import pyarrow.parquet

        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), project / name)

    return prepare


def not_a_saved_dataset(project: Path) -> None:
    (project / "rows").mkdir()
    (project / "rows" / "part-0.jsonl").write_text(jsonl(GOOD_CHAT), encoding="utf-8")


def saved_dataset_dict(project: Path) -> None:
    from datasets import Dataset, DatasetDict

    rows = [GOOD_CHAT, GOOD_CHAT]
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(project / "saved"))


FORMAT = "  eval: eval.jsonl\n"
"""The line after which a case adds data keys (format, packing)."""
MODEL = "model: {source: '{model}'}"

CASES = [
    # --- rows in a layout, but not trainable ---------------------------------------------
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:2: the conversation has no assistant turn",
        "add the assistant's reply",
        prepare=write("train.jsonl", jsonl(GOOD_CHAT, chat(("user", "Hi")))),
        id="chat-without-assistant-turn",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:1: messages turn 2 has role 'bot'",
        "roles read: system, user, assistant",
        prepare=write("train.jsonl", jsonl(chat(("user", "Hi"), ("bot", "Hello")))),
        id="chat-unknown-role",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:2: messages turn 2 (assistant) content is a number, not a string",
        "write messages turn 2 (assistant) content as text",
        prepare=write("train.jsonl", jsonl(GOOD_CHAT, chat(("user", "1+1?"), ("assistant", 2)))),
        id="chat-content-not-a-string",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:2: conversations turn 1 has from 'robot'",
        "give every turn a 'from' of system, human, gpt",
        prepare=write(
            "train.jsonl",
            jsonl(
                {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]},
                {"conversations": [{"from": "robot", "value": "a"}]},
            ),
        ),
        id="sharegpt-unknown-speaker",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:3: text is empty",
        "remove the row",
        prepare=texts("train.jsonl", TEXT, {"text": "   "}),
        id="text-empty-row",
    ),
    # --- files in no layout, or in two -------------------------------------------------------
    bad(
        "s.yaml:5: data.train:",
        "train.parquet row 1: no data layout matches the row",
        "fields found: question (a string), answer (a string)",
        "layouts read: messages",
        "set data.format",
        edit={"train: train.jsonl": "train: train.parquet"},
        prepare=parquet("train.parquet", [{"question": "q", "answer": "a"}] * 2),
        id="parquet-with-other-columns",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:2: the row is in the prompt_response layout",
        "train.jsonl:1 is in the messages layout",
        "split the file by layout",
        prepare=write("train.jsonl", jsonl(GOOD_CHAT, {"prompt": "p", "response": "r"})),
        id="file-mixing-two-layouts",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:1: the row has no instruction, output, which the alpaca layout",
        "change data.format",
        edit={FORMAT: FORMAT + "  format: alpaca\n"},
        id="format-names-a-layout-the-rows-are-not-in",
    ),
    bad(
        "s.yaml:7: data.format:",
        "use one of: 'messages', 'sharegpt', 'alpaca'",
        edit={FORMAT: FORMAT + "  format: chatml\n"},
        id="format-unknown",
    ),
    # --- containers --------------------------------------------------------------------------
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl holds no records: it is 0 bytes",
        "write the file again",
        prepare=write("train.jsonl", b""),
        id="data-0-byte-file",
    ),
    bad(
        "s.yaml:5: data.train:",
        "is a folder, not a saved dataset",
        "written by datasets.Dataset.save_to_disk",
        edit={"train: train.jsonl": "train: rows"},
        prepare=not_a_saved_dataset,
        id="folder-not-a-saved-dataset",
    ),
    bad(
        "s.yaml:5: data.train:",
        "is a saved DatasetDict (splits: train)",
        "name one split's folder",
        edit={"train: train.jsonl": "train: saved"},
        prepare=saved_dataset_dict,
        id="saved-dataset-dict-not-one-split",
    ),
    bad(
        "s.yaml:5: data.train:",
        "must end in .jsonl, .json, .csv, .parquet, or be a folder written by",
        edit={"train: train.jsonl": "train: train.txt"},
        prepare=write("train.txt", "a line of text\n"),
        id="data-file-of-unknown-type",
    ),
    # --- the chat template -------------------------------------------------------------------
    bad(
        "s.yaml:3: model.chat_template:",
        "chat template file",
        "templates/chat.jinja' does not exist",
        "set model.chat_template to auto, model, chatml, plain",
        edit={MODEL: "model: {source: '{model}', chat_template: templates/chat.jinja}"},
        id="chat-template-file-missing",
    ),
    bad(
        "s.yaml:3: model.chat_template:",
        "outside the study file's folder and the data roots",
        "copy it next to the study file",
        edit={MODEL: "model: {source: '{model}', chat_template: ../outside/secret.jsonl}"},
        id="chat-template-file-outside-the-roots",
    ),
    bad(
        "s.yaml:3: model.chat_template:",
        "cannot be used for training",
        "set model.chat_template to chatml or plain, or fix the template",
        edit={MODEL: "model: {source: '{model}', chat_template: last.jinja}"},
        prepare=write("last.jinja", "{{ messages[-1]['content'] }}"),
        id="chat-template-cannot-mask",
    ),
    # --- the data's kind against the metric, the other files and packing -------------------
    bad(
        "s.yaml:7: metric:",
        "metric 'perplexity' scores raw text, but the data is chat",
        "use a chat metric",
        edit={"metric: json_match": "metric: perplexity"},
        id="perplexity-on-chat-data",
    ),
    bad(
        "s.yaml:7: metric:",
        "metric 'json_match' scores generated answers, but the data is raw text",
        "set metric: perplexity (or eval_loss)",
        prepare=texts(),
        id="generation-metric-on-text-data",
    ),
    bad(
        "s.yaml:6: data.eval:",
        "the eval data is chat (prompt_response layout) but the train data is text",
        "give eval data of the train data's kind (text)",
        edit={"metric: json_match": "metric: eval_loss"},
        prepare=write("train.jsonl", jsonl(TEXT, TEXT)),
        id="train-text-eval-chat",
    ),
    bad(
        "s.yaml:7: data.packing:",
        "data.packing concatenates raw documents, but the train data is chat",
        "remove data.packing",
        edit={FORMAT: FORMAT + "  packing: true\n"},
        id="packing-on-chat-data",
    ),
]


@pytest.mark.parametrize("command", ["validate", "tune"])
@pytest.mark.parametrize("case", CASES)
def test_bad_data_is_refused_alike_by_validate_and_tune(
    case: Bad, command: str, project: Path, tiny_model: Path
) -> None:
    check_refused(dataclasses.replace(case, args=(command, "s.yaml")), project, tiny_model)


def test_the_table_covers_what_the_issue_lists() -> None:
    ids = {case.id for case in CASES}
    assert len(ids) == len(CASES)
    for kind in ("without-assistant", "unknown-role", "not-a-string", "empty-row", "parquet",
                 "0-byte", "not-a-saved-dataset", "mixing", "format-names", "format-unknown",
                 "template-file-missing", "cannot-mask", "perplexity-on-chat",
                 "generation-metric-on-text"):  # fmt: skip
        assert any(kind in i for i in ids), kind
