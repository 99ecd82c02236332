"""The language mix of the requests, by py3langid (its model ships inside the wheel).

Every system and user turn is classified (and every raw-text document): they are what the user
writes, a middle turn as much as the first; assistant turns are not, as answers are often JSON or
code, which no language model can name. Short instructions full of names are hard to classify ("Save
Lena Klein, Zurich, tel. 0636-508323" scores Danish against 140 languages), so two guards keep
the mix honest: the candidates are a default set of widely used languages (pass `languages` to
widen or narrow it, or `all`), and a row whose best language has a normalised probability below
`MIN_CONFIDENCE` is counted as `und` (undetermined) rather than given a guess. Measured on the
demo data: 333 of 348 prompts confidently English, 15 undetermined, none called another language;
clear German, French, Chinese or Spanish sentences score above 0.9.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from advisor.errors import AdvisorInputError
from advisor.scan.core import TEXT_ROLE, Location, Row, ScanContext

DEFAULT_LANGUAGES = (
    "ar", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fr", "he", "hi", "hu", "id", "it",
    "ja", "ko", "nl", "no", "pl", "pt", "ro", "ru", "sv", "th", "tr", "uk", "vi", "zh",
)  # fmt: skip
MIN_CONFIDENCE = 0.5
UNDETERMINED = "und"
ROWS_LISTED = 50
"""Rows listed per language other than the most common one (counts are always complete)."""


@dataclass
class LanguageResult:
    counts: dict[str, int] = field(default_factory=dict)
    """Language code -> turns (system, user, documents), most common first; `und` for
    undetermined."""
    dominant: str | None = None
    candidates: list[str] = field(default_factory=list)
    rows: dict[str, list[Location]] = field(default_factory=dict)
    """Rows of every language but the dominant one (at most ROWS_LISTED each)."""

    def not_in(self, allowed: set[str]) -> int:
        """Turns confidently identified as a language outside `allowed` (und not counted)."""
        return sum(n for lang, n in self.counts.items() if lang not in allowed | {UNDETERMINED})

    def measures(self) -> dict[str, int]:
        return {f"lang={lang}": n for lang, n in self.counts.items()}


@lru_cache(maxsize=4)
def identifier(languages: tuple[str, ...] | None) -> Any:
    """py3langid's classifier with normalised probabilities (loading its model takes ~0.7 s)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if languages is not None:
        unknown = sorted(set(languages) - set(ident.labels))
        if unknown:
            raise AdvisorInputError(
                f"unknown language code(s) {', '.join(unknown)}",
                fix=f"use ISO 639 codes py3langid knows, e.g. {', '.join(DEFAULT_LANGUAGES[:8])}, "
                "or `all`",
                where="--languages",
            )
        ident.set_languages(list(languages))
    return ident


def candidates(option: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The option as given (`("all",)` means every language the model knows: None)."""
    if option is None:
        return DEFAULT_LANGUAGES
    return None if option == ("all",) else option


def classify(text: str, languages: tuple[str, ...] | None = DEFAULT_LANGUAGES) -> str:
    """The language code of `text`, or `und` when the model is not confident."""
    if not any(char.isalpha() for char in text):
        return UNDETERMINED
    lang, confidence = identifier(languages).classify(text)
    return lang if confidence >= MIN_CONFIDENCE else UNDETERMINED


def check(rows: Sequence[Row], context: ScanContext) -> LanguageResult:
    languages = candidates(context.options.languages)
    labels: list[tuple[Row, str]] = [
        (row, classify(text, languages))
        for row in rows
        for text in row.texts("system", "user", TEXT_ROLE)
        if text.strip()
    ]
    counts = Counter(lang for _, lang in labels)
    ordered = dict(counts.most_common())
    dominant = next((lang for lang in ordered if lang != UNDETERMINED), None)
    listed: dict[str, list[Location]] = {}
    for row, lang in labels:
        location = Location(row.file, row.row)
        named = listed.setdefault(lang, []) if lang != dominant else []
        if lang != dominant and len(named) < ROWS_LISTED and location not in named:
            named.append(location)  # a row with two turns in one language is named once
    return LanguageResult(
        counts=ordered,
        dominant=dominant,
        candidates=list(languages) if languages is not None else ["all"],
        rows=listed,
    )
