"""What a training file says about the task, for `advisor recommend --train`.

The scan reads the file as training will (its layout, each row's conversation or document) and
measures what the recommender decides from: how many examples, how long each is once formatted
(in the study model's tokens through its chat template, or in words without a local model),
how much of it is the assistant's (the tokens the loss covers), whether it is conversations or a
raw-text corpus, and its languages. Only the checks that measure these run: no duplicate or
personal-data search for a recommendation.
"""

from __future__ import annotations

from pathlib import Path

from advisor.decide.traits import WORD_TOKENS, DataTraits
from advisor.scan.core import ScanOptions
from advisor.scan.scanner import scan_files

CHECKS = ("turns", "lengths", "language")


def read_data_traits(
    path: str | Path,
    *,
    model: str | None = None,
    options: ScanOptions | None = None,
    where: str = "--train",
) -> DataTraits:
    """The traits of the data file `path`; lengths in `model`'s tokens when given, else words.

    Raises the layouts' input error (naming the file and row) for a file training cannot read.
    """
    report = scan_files([path], options=options, model=model, checks=CHECKS, where=where)
    lengths, language = report.results["lengths"], report.results["language"]
    total = sum(language.counts.values())
    counted_by = f"{lengths.source}, {lengths.template} chat template"
    if lengths.template is None:
        counted_by = (
            f"words: no local tokenizer for the model (give --study-model DIR or a local "
            f"--model for tokens); seq_len assumes {WORD_TOKENS} tokens per word"
        )
    return DataTraits(
        path=str(path),
        layout=report.files[0].layout,
        examples=lengths.sequence.count,  # the rows training reads (refused ones are not)
        unit=lengths.unit,
        counted_by=counted_by,
        length_mean=lengths.sequence.mean,
        length_p95=lengths.sequence.p95,
        completion_mean=lengths.completion.mean,
        languages={code: round(n / total, 3) for code, n in language.counts.items()},
    )
