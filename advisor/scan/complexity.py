"""What the instructions ask for: the leading verb and its object, and how demanding the asks are.

A data set of "List three ..." and "Name the ..." teaches recall; one of "Explain why ..." and
"Compare ..." teaches reasoning; a fine-tune that should do the second learns little from the
first. Without a parser (none ships its model in a small wheel), the verb is found by a closed,
English lexicon: after skipping greetings and politeness ("Hi,", "Please", "Can you", "I want you
to"), the first word of the first sentence that starts with a known verb is the verb, and the
first content word after it (articles, numerals, pronouns and a few adjectives skipped) is its
object: "Could you briefly explain the difference between A and B" -> explain / difference.
Wh-questions count too: who/what/when/where/which (and "how many") ask for recall, why/how for
reasoning.

Categories: `simple` (list, name, give, ...), `reasoning` (explain, summarise, compare, ...),
`other` (any other known verb: write, translate, extract, send, ...) and `no_verb` (statements,
requests in other languages, verbs not in the lexicon).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from advisor.scan.core import Row, ScanContext


def _lexicon(words: str) -> frozenset[str]:
    return frozenset(words.split())


SIMPLE = _lexicon(
    "list name give state identify define find enumerate mention recall tell provide count "
    "select pick choose label spell who what when where which"
)
REASONING = _lexicon(
    "explain summarise summarize compare contrast analyse analyze evaluate discuss describe "
    "justify assess critique argue interpret elaborate examine infer predict prove reason "
    "outline why how"
)
OTHER = _lexicon(
    "write rewrite translate convert extract classify categorize categorise generate create "
    "draft compose correct edit paraphrase format fill complete sort calculate compute solve "
    "suggest recommend design plan make construct develop formulate determine add remove "
    "update replace insert delete change fix check verify detect answer respond reply return "
    "produce prepare build implement code program simplify shorten expand improve brainstorm "
    "imagine pretend act play send book reserve order save call ship deliver schedule cancel "
    "arrange organize organise show print read parse tag mark rate rank score estimate "
    "transform turn output use take put buy get open close set"
)
VERBS = SIMPLE | REASONING | OTHER

_FILLERS = _lexicon(
    "hi hello hey dear ok okay please pls plz kindly can could would will you u i i'd id i'm im "
    "want need like to me us help now then also just quickly briefly so and well thanks "
    "thank sir madam assistant"
)
_SKIP_AFTER_VERB = _lexicon(
    "a an the me us him her them it this that these those my our your his their its some any "
    "all each every one two three four five six seven eight nine ten few several many more "
    "most briefly short brief long detailed simple main key different new good best top "
    "following given of about for to is are was were do does did be in on at by up out down "
    "between why what how when where which who whether if"
)
_COLON_ASKS = REASONING | _lexicon(
    "translate classify rewrite paraphrase correct complete solve extract convert answer"
)
_HOW_RECALL = _lexicon("many much old long far big tall often")
_SENTENCE = re.compile(r"(?<=[.!?;:\n])\s+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
SENTENCES_TRIED = 3
CATEGORIES = ("simple", "reasoning", "other", "no_verb")
TOP = 15


@dataclass(frozen=True)
class Ask:
    verb: str | None
    object: str | None
    category: str


@dataclass(frozen=True)
class VerbCount:
    verb: str
    object: str | None
    count: int


@dataclass
class ComplexityResult:
    analysed: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    verbs: list[VerbCount] = field(default_factory=list)
    """The most frequent leading verbs (object None), most common first."""
    pairs: list[VerbCount] = field(default_factory=list)
    """The most frequent verb-object pairs."""

    def measures(self) -> dict[str, int]:
        return {f"ask:{name}": self.categories.get(name, 0) for name in CATEGORIES}


def category_of(verb: str | None) -> str:
    if verb is None:
        return "no_verb"
    if verb in SIMPLE:
        return "simple"
    if verb in REASONING:
        return "reasoning"
    return "other"


def _lead(words: list[str]) -> Ask | None:
    """The ask in one sentence's words, or None when it does not open with a known verb."""
    index = 0
    while index < len(words) and words[index] in _FILLERS:
        index += 1
    if index == len(words) or words[index] not in VERBS:
        return None
    verb = words[index]
    obj = next((w for w in words[index + 1 :] if w not in _SKIP_AFTER_VERB), None)
    following = words[index + 1] if index + 1 < len(words) else None
    if verb == "how" and following in _HOW_RECALL:  # "how many moons ..." asks for a fact
        return Ask(verb, obj, "simple")
    return Ask(verb, obj, category_of(verb))


def _is_label(sentence: str, ask: Ask) -> bool:
    """`Name: Eva Brandt` names a field; `Summarise: ...` still asks for something."""
    return ask.object is None and sentence.rstrip().endswith(":") and ask.verb not in _COLON_ASKS


def leading_ask(instruction: str) -> Ask:
    """The leading verb, its object and the category of one instruction."""
    text = instruction.strip().lower().replace("\u2019", "'")
    for sentence in _SENTENCE.split(text)[:SENTENCES_TRIED]:
        ask = _lead(_WORD.findall(sentence))
        if ask is not None and not _is_label(sentence, ask):
            return ask
    return Ask(None, None, "no_verb")


def check(rows: Sequence[Row], context: ScanContext) -> ComplexityResult:
    """Every user turn is an ask (a follow-up as much as the first); raw text has none."""
    asks = [leading_ask(text) for row in rows for text in row.texts("user") if text.strip()]
    categories = Counter(ask.category for ask in asks)
    verbs = Counter(ask.verb for ask in asks if ask.verb)
    pairs = Counter((ask.verb, ask.object) for ask in asks if ask.verb)
    return ComplexityResult(
        analysed=len(asks),
        categories={name: categories[name] for name in CATEGORIES},
        verbs=[VerbCount(verb, None, n) for verb, n in verbs.most_common(TOP)],
        pairs=[VerbCount(verb, obj, n) for (verb, obj), n in pairs.most_common(TOP)],
    )
