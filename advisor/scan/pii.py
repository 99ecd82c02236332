"""Personal data in every turn of every row: e-mail, phone, China resident ID, card and IP numbers.

Every candidate that has a checksum or a grammar is validated before it is reported, so that
order numbers and dates are not called personal data: a resident ID needs its ISO 7064 MOD 11-2
check character and a real birth date, a card number the Luhn check, an IP address must parse
(`ipaddress`). Phone numbers are mainland-China mobiles (`1[3-9]` + 9 digits, optionally +86)
and international numbers written with a leading `+` and country code; national numbers without
a country code (`0664 804 593`) are not reported: without a country they cannot be told from
order or reference numbers.

Findings carry masked values only (`j***@example.com`, `138****5678`): the full value is never
stored in a report, printed or logged.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from advisor.scan.core import Row, ScanContext

KINDS = ("email", "phone", "cn_id", "card", "ip")

CLAIM_ORDER = ("email", "cn_id", "phone", "card", "ip")
"""Earlier kinds claim their characters first: digits inside an e-mail are not a phone, an
18-digit resident ID is not also a card number, `+8613812345678` is a phone, not a card."""

_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
# ASCII boundaries, not \b: in "手机13812345678" the CJK character counts as a word character.

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_CN_MOBILE = re.compile(
    _NOT_ALNUM_BEFORE
    + r"(?P<cc>(?:\+|00)86[ -]?)?(?P<number>1[3-9]\d(?:\d{8}|(?P<sep>[ -])\d{4}(?P=sep)\d{4}))"
    + _NOT_ALNUM_AFTER
)
_INTL_PHONE = re.compile(
    r"(?<![\w+])\+(?P<cc>[1-9]\d{0,2})[ -]?(?P<rest>\(?\d{1,4}\)?(?:[ -]?\d{2,4}){2,4})"
    + _NOT_ALNUM_AFTER
)
_CN_ID = re.compile(_NOT_ALNUM_BEFORE + r"[1-9]\d{16}[\dXx]" + _NOT_ALNUM_AFTER)
_CARD = re.compile(
    r"(?<![\d+-])(?:"
    r"\d{13,19}"  # unseparated
    r"|\d{4}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?P=sep)\d{1,7}"  # 4-4-4-x (Visa, Mastercard, ...)
    r"|\d{4}(?P<sep2>[ -])\d{6}(?P=sep2)\d{4,5}"  # 4-6-5 (Amex), 4-6-4 (Diners)
    r")(?![\d-])"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
    r"(?![\w:.])"
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class PiiFinding:
    file: str
    row: int
    turn: int | None
    """The 1-based turn it is in (a document is one turn); None in a refused row's field."""
    role: str
    """That turn's role (system, user, assistant, or text for a document), or the refused
    row's field."""
    kind: str
    masked: str


@dataclass
class PiiResult:
    """Findings (masked), how many rows hold each kind, and how many rows hold any."""

    findings: list[PiiFinding] = field(default_factory=list)
    rows_by_kind: dict[str, int] = field(default_factory=dict)
    rows_with_pii: int = 0

    def measures(self) -> dict[str, int]:
        by_kind = {f"pii:{kind}": self.rows_by_kind.get(kind, 0) for kind in KINDS}
        return {"pii": self.rows_with_pii, **by_kind}


# --- validation -----------------------------------------------------------------------------------


def cn_id_valid(value: str) -> bool:
    """China resident ID (GB 11643): 17 digits, ISO 7064 MOD 11-2 check character, birth date."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[17].upper():
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return dt.date(1800, 1, 1) <= born <= dt.date.today()


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number carries in its last digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _ip_valid(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# --- masking: keep enough to find the value in the file, never the whole value ---------------


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_digits(value: str, head: int, tail: int) -> str:
    """Keep `head` leading and `tail` trailing characters, star the rest: `138****5678`."""
    chars = value.replace(" ", "").replace("-", "")
    hidden = max(len(chars) - head - tail, 1)
    return chars[:head] + "*" * hidden + (chars[-tail:] if tail else "")


def mask_ip(value: str) -> str:
    if ":" in value:
        return value.split(":", 1)[0] + ":****"
    return value.split(".", 1)[0] + ".*.*.*"


# --- detection ------------------------------------------------------------------------------------

Span = tuple[int, int]
Detector = Callable[[str], Iterator[tuple[Span, str]]]


def _emails(text: str) -> Iterator[tuple[Span, str]]:
    for match in _EMAIL.finditer(text):
        yield match.span(), mask_email(match.group())


def _phones(text: str) -> Iterator[tuple[Span, str]]:
    for match in _CN_MOBILE.finditer(text):
        prefix = "+86 " if match.group("cc") else ""
        yield match.span(), prefix + mask_digits(match.group("number"), 3, 4)  # 138****5678
    for match in _INTL_PHONE.finditer(text):
        digits = match.group("cc") + re.sub(r"\D", "", match.group("rest"))
        if 8 <= len(digits) <= 15:  # E.164: at most 15 digits with the country code
            yield match.span(), "+" + mask_digits(digits, 2, 2)


def _cn_ids(text: str) -> Iterator[tuple[Span, str]]:
    for match in _CN_ID.finditer(text):
        if cn_id_valid(match.group()):
            yield match.span(), mask_digits(match.group().upper(), 4, 4)


def _cards(text: str) -> Iterator[tuple[Span, str]]:
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            yield match.span(), mask_digits(digits, 0, 4)


def _ips(text: str) -> Iterator[tuple[Span, str]]:
    for match in _IPV4.finditer(text):
        if _ip_valid(match.group()):
            yield match.span(), mask_ip(match.group())
    for match in _IPV6.finditer(text):
        value = match.group()
        # A bare "::" parses as an address but in text it is punctuation.
        if any(char.isalnum() for char in value) and _ip_valid(value):
            yield match.span(), mask_ip(value)


DETECTORS: dict[str, Detector] = {
    "email": _emails,
    "phone": _phones,
    "cn_id": _cn_ids,
    "card": _cards,
    "ip": _ips,
}


def find_pii(text: str) -> list[tuple[Span, str, str]]:
    """(span, kind, masked value) of every validated finding, spans not overlapping."""
    taken: list[Span] = []
    found = []
    for kind in CLAIM_ORDER:
        for span, masked in DETECTORS[kind](text):
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            taken.append(span)
            found.append((span, kind, masked))
    return sorted(found)


def mask_text(text: str) -> str:
    """`text` with every finding replaced by its masked form (for quoting rows in reports)."""
    for (start, end), _kind, masked in reversed(find_pii(text)):
        text = text[:start] + masked + text[end:]
    return text


def check(rows: Sequence[Row], context: ScanContext) -> PiiResult:
    """Scan every turn of every row: a system prompt or a middle user turn trains the model (and
    is logged) as much as the answer does."""
    result = PiiResult()
    kinds_per_row: dict[tuple[str, int], set[str]] = {}
    for row in rows:
        texts = [(number, turn.role, turn.content) for number, turn in row.numbered()]
        texts += [(None, key, value) for key, value in row.fields]  # a refused row's fields
        for number, role, text in texts:
            for _span, kind, masked in find_pii(text):
                result.findings.append(PiiFinding(row.file, row.row, number, role, kind, masked))
                kinds_per_row.setdefault((row.file, row.row), set()).add(kind)
    counts = Counter(kind for kinds in kinds_per_row.values() for kind in kinds)
    result.rows_by_kind = {kind: counts[kind] for kind in KINDS if counts[kind]}
    result.rows_with_pii = len(kinds_per_row)
    return result


def preview(text: str, width: int = 80) -> str:
    """One line of at most `width` characters, personal data masked (reports quote rows)."""
    line = " ".join(mask_text(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"
