"""`--fail-on`: rules over a scan report that make a pipeline stop (exit code 1).

A rule is a measure, optionally with a threshold, and rules are separated by commas:

    pii                   any row with personal data (same as pii>0)
    pii:cn_id             rows with one kind: email, phone, cn_id, card, ip
    duplicates>5%         rows deduplication would remove, over 5 % of all rows
    exact_duplicates>10   ... more than 10 rows (near_duplicates likewise)
    empty>0, truncated>=1%
    lang!=en              prompts confidently in a language other than en (und not counted);
    lang!=en|de>2%        ... other than en and de, over 2 %

The expression is parsed before the scan runs, so a typo costs no scan time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from advisor.errors import AdvisorInputError
from advisor.scan.core import ScanReport
from advisor.scan.pii import KINDS

MEASURES = (
    "pii",
    *(f"pii:{kind}" for kind in KINDS),
    "duplicates",
    "exact_duplicates",
    "near_duplicates",
    "empty",
    "truncated",
)
_RULE = re.compile(
    r"^(?P<name>lang!=(?P<langs>[a-z]{2,3}(?:\|[a-z]{2,3})*)|[a-z_]+(?::[a-z_]+)?)"
    r"(?:(?P<op>>=|>)(?P<value>\d+(?:\.\d+)?)(?P<percent>%)?)?$"
)
_SYNTAX = (
    "write rules like `pii,duplicates>5%,empty>0,truncated>10%,lang!=en`: a measure "
    f"({', '.join(MEASURES)}, lang!=CODE[|CODE]), optionally followed by >N, >=N, >N% or >=N%"
)


@dataclass(frozen=True)
class Rule:
    text: str
    measure: str
    op: str = ">"
    value: float = 0.0
    percent: bool = False
    languages: frozenset[str] = frozenset()

    def count(self, report: ScanReport) -> int:
        if self.languages:
            return report.results["language"].not_in(set(self.languages))
        for result in report.results.values():
            measures = result.measures()
            if self.measure in measures:
                return measures[self.measure]
        raise AdvisorInputError(
            f"the rule {self.text!r} needs a check this scan did not run",
            fix="run every check (the default)",
            where="--fail-on",
        )

    def trips(self, count: int, rows: int) -> bool:
        amount = 100 * count / rows if self.percent and rows else count
        return amount >= self.value if self.op == ">=" else amount > self.value


def parse_fail_on(expression: str) -> list[Rule]:
    """The rules of a `--fail-on` expression; an input error names the first bad token."""
    rules = []
    for token in (part.strip() for part in expression.split(",")):
        match = _RULE.match(token.replace(" ", ""))
        if not token or match is None:
            raise AdvisorInputError(
                f"cannot read the rule {token!r} in {expression!r}", fix=_SYNTAX, where="--fail-on"
            )
        name = match["name"]
        if match["langs"] is None and name not in MEASURES:
            raise AdvisorInputError(
                f"unknown measure {name!r} in the rule {token!r}", fix=_SYNTAX, where="--fail-on"
            )
        if match["percent"] and float(match["value"]) > 100:
            raise AdvisorInputError(
                f"{token!r}: a share cannot exceed 100%", fix=_SYNTAX, where="--fail-on"
            )
        rules.append(
            Rule(
                text=token,
                measure=name,
                op=match["op"] or ">",
                value=float(match["value"] or 0),
                percent=bool(match["percent"]),
                languages=frozenset(match["langs"].split("|")) if match["langs"] else frozenset(),
            )
        )
    return rules


def evaluate_fail_on(report: ScanReport, expression: str | list[Rule]) -> list[str]:
    """One line per rule that trips, e.g. `pii: 3 rows (1.0%), rule pii`; empty when none does."""
    rules = parse_fail_on(expression) if isinstance(expression, str) else expression
    tripped = []
    for rule in rules:
        count = rule.count(report)
        if rule.trips(count, report.rows):
            share = 100 * report.share(count)
            tripped.append(f"{rule.measure}: {count} rows ({share:.1f}%), rule {rule.text}")
    return tripped
