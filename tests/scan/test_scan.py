"""`advisor.scan`: every check on crafted data whose answers are known, and the pre-tune gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import DIRTY, FULL_VALUES, write_dirty

from advisor.errors import AdvisorInputError
from advisor.scan import (
    ScanOptions,
    check_study_data,
    evaluate_fail_on,
    parse_fail_on,
    scan_file,
    scan_files,
    to_html,
    to_markdown,
)
from advisor.scan.complexity import leading_ask
from advisor.scan.pii import cn_id_valid, find_pii, luhn_valid, mask_text
from advisor.scan.report import scan_metrics, write_report_files
from advisor.study import StudySpec, load_study
from runners.errors import InputError
from runners.testing import write_jsonl

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dirty(tmp_path_factory.mktemp("scan"))


@pytest.fixture(scope="module")
def report(dirty: Path):
    return scan_file(dirty, options=ScanOptions(max_seq_length=100))


# --- personal data --------------------------------------------------------------------------


def test_resident_id_needs_checksum_and_birth_date() -> None:
    assert cn_id_valid("11010519491231002X") and cn_id_valid("11010519491231002x")
    assert cn_id_valid("44030419900307123X") and cn_id_valid("310115200001015554")
    assert not cn_id_valid("110105194912310021")  # check character should be X
    assert not cn_id_valid("440304199003071232")
    assert not cn_id_valid("110105194902310018")  # checksum right, 31 February
    assert not cn_id_valid("11010519491231002")  # 17 characters


def test_resident_id_check_character_for_every_remainder() -> None:
    """Against the standard's other form of the rule: check = (12 - sum mod 11) mod 11, 10 = X."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]  # 7, 9, 10, 5, ... as GB 11643 derives them
    seen = set()
    for serial in range(100, 160):
        base = f"11010519800101{serial:03d}"
        value = (12 - sum(int(d) * w for d, w in zip(base, weights, strict=True)) % 11) % 11
        check = "X" if value == 10 else str(value)
        seen.add(check)
        assert cn_id_valid(base + check)
        wrong = "0" if check == "X" else "X"
        assert not cn_id_valid(base + wrong)
    assert len(seen) == 11
    assert cn_id_valid("440524188001010014")  # the example ID of Wikipedia's article


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112") and not luhn_valid("378282246310006")


def test_pii_rows_kinds_and_masks(report) -> None:
    pii = report.results["pii"]
    assert pii.rows_with_pii == 5
    assert pii.rows_by_kind == {"email": 1, "phone": 1, "cn_id": 1, "card": 1, "ip": 1}
    found = {(f.row, f.turn, f.role, f.kind, f.masked) for f in pii.findings}
    assert found == {
        (12, 1, "user", "email", "j***@example.com"),
        (13, 1, "user", "phone", "138****5678"),
        (13, 1, "user", "phone", "+86 139****5678"),
        (14, 1, "user", "cn_id", "1101**********002X"),
        (14, 2, "assistant", "cn_id", "4403**********123X"),
        (16, 1, "user", "card", "************1111"),
        (17, 1, "user", "ip", "192.*.*.*"),
        (17, 1, "user", "ip", "2001:****"),
    }


def test_invalid_ids_and_cards_are_not_personal_data() -> None:
    for text in (
        "ID 110105194912310021 and 110105194902310018",
        "card 4111 1111 1111 1112",
        "ip 999.1.1.1 and 1.2.3",
        "order 20240101-7731, 12:30:45, a :: b",
    ):
        assert find_pii(text) == [], text


def test_mobile_numbers_with_cjk_neighbours_and_country_code() -> None:
    assert [k for _, k, _ in find_pii("手机13812345678，谢谢")] == ["phone"]
    assert [m for _, _, m in find_pii("call +8613812345678")] == ["+86 138****5678"]
    assert find_pii("12345678901") == []  # 12 is no mobile prefix
    assert find_pii("213812345678") == []  # digits run on: not a mobile number


def test_reports_never_hold_a_full_value(report) -> None:
    for text in (report.to_json(), to_markdown(report), to_html(report)):
        for value in FULL_VALUES:
            assert value not in text
    assert mask_text("mail jane.doe@example.com") == "mail j***@example.com"


def test_demo_data_has_no_personal_data() -> None:
    data = ROOT / "studies" / "data"
    demo = scan_files([data / "demo_train.jsonl", data / "demo_eval.jsonl"], checks=["pii"])
    assert demo.rows == 348 and demo.results["pii"].rows_with_pii == 0


# --- duplicates -------------------------------------------------------------------------------


def test_exact_and_near_duplicate_clusters(report) -> None:
    dup = report.results["duplicates"]
    assert [[loc.row for loc in c.rows] for c in dup.exact] == [[1, 6, 7]]
    assert [[loc.row for loc in c.rows] for c in dup.near] == [[3, 8]]
    assert 0.8 <= dup.near[0].similarity < 1.0  # one character differs: 0.9
    assert (dup.exact_redundant, dup.redundant_rows) == (2, 3)
    assert evaluate_fail_on(report, "duplicates>3") == []
    assert evaluate_fail_on(report, "duplicates>=3, near_duplicates>0") == [
        "duplicates: 3 rows (14.3%), rule duplicates>=3",
        "near_duplicates: 1 rows (4.8%), rule near_duplicates>0",
    ]


def test_near_threshold_decides(dirty: Path) -> None:
    strict = scan_file(dirty, options=ScanOptions(near_threshold=0.99), checks=["duplicates"])
    assert strict.results["duplicates"].near == []
    assert strict.results["duplicates"].redundant_rows == 2


def test_duplicates_across_files(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", DIRTY[:5])
    evals = write_jsonl(tmp_path / "eval.jsonl", [DIRTY[1], {"prompt": "New?", "response": "Yes"}])
    both = scan_files([train, evals], checks=["duplicates"])
    dup = both.results["duplicates"]
    assert dup.cross_file_clusters == 1
    assert [(loc.file, loc.row) for loc in dup.exact[0].rows] == [(str(train), 2), (str(evals), 1)]


# --- language, complexity, empty, lengths ------------------------------------------------------


def test_language_mix(report) -> None:
    lang = report.results["language"]
    assert lang.dominant == "en"
    # 18 user turns: rows 18-20 are refused (an empty prompt, an empty and a missing response)
    assert lang.counts == {"en": 15, "de": 1, "zh": 1, "fr": 1}
    assert [(code, [loc.row for loc in lang.rows[code]]) for code in ("de", "zh", "fr")] == [
        ("de", [9]),
        ("zh", [10]),
        ("fr", [11]),
    ]
    assert evaluate_fail_on(report, "lang!=en") == ["lang!=en: 3 rows (14.3%), rule lang!=en"]
    assert evaluate_fail_on(report, "lang!=en|de|zh|fr") == []
    assert evaluate_fail_on(report, "lang!=en>15%") == []


def test_leading_verb_and_object() -> None:
    ask = leading_ask("Could you briefly explain the difference between A and B?")
    assert (ask.verb, ask.object, ask.category) == ("explain", "difference", "reasoning")
    assert leading_ask("Hi, Max here. Please send 10 lamps to Graz.").category == "other"
    assert leading_ask("How many moons does Mars have?").category == "simple"
    assert leading_ask("Name: Eva Brandt, table for two").category == "no_verb"


def test_complexity_shares(report) -> None:
    cx = report.results["complexity"]
    assert cx.analysed == 18  # rows 18-20 are refused
    assert cx.categories == {"simple": 4, "reasoning": 6, "other": 5, "no_verb": 3}
    verbs = {v.verb: v.count for v in cx.verbs}
    assert verbs["list"] == 3 and verbs["explain"] == 2 and verbs["summarise"] == 2
    assert ("list", "rivers", 3) in [(p.verb, p.object, p.count) for p in cx.pairs]


def test_rows_training_refuses_are_all_listed(report) -> None:
    empty = report.results["empty"]
    assert [(f.row, f.problem.split(",")[0]) for f in empty.findings] == [
        (18, "prompt is empty"),
        (19, "response is empty"),  # whitespace only
        (20, "the row has no response"),
    ]
    assert "fields found: prompt (a string)" in empty.findings[2].problem
    assert empty.rows_with_empty == 3
    assert evaluate_fail_on(report, "empty>0") == ["empty: 3 rows (14.3%), rule empty>0"]


def test_word_lengths_are_labelled_and_truncation_listed(report) -> None:
    lengths = report.results["lengths"]
    assert lengths.unit == "words" and "no model" in lengths.source
    assert [t.row for t in lengths.truncated] == [21]
    assert lengths.sequence.max == lengths.truncated[0].length > 100
    assert lengths.context.count == lengths.completion.count == 18  # 3 rows refused
    assert lengths.template is None
    cut = lengths.truncated[0]
    assert (cut.turns_cut, cut.cut_in) == (2, "user")  # the long prompt: its answer is lost
    assert lengths.cut_in_context == 1
    assert sum(b.count for b in lengths.sequence.histogram) == 18


def test_token_lengths_through_the_chat_template(dirty: Path, tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    expected = []
    for number, row in enumerate(DIRTY, start=1):
        if number in (18, 19, 20):  # refused: an empty prompt, an empty and a missing response
            continue
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": row.get("prompt") or ""},
            {"role": "assistant", "content": row.get("response") or ""},
        ]
        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)
        expected.append((number, len(ids["input_ids"])))
    limit = sorted(n for _, n in expected)[-4]  # the three longest are cut
    options = ScanOptions(max_seq_length=limit, system_prompt="Be brief.")
    scanned = scan_file(dirty, options=options, model=str(tiny_model), checks=["lengths"])
    lengths = scanned.results["lengths"]
    assert lengths.unit == "tokens" and lengths.template == "model"  # the tokenizer's own
    assert sorted((t.row, t.length) for t in lengths.truncated) == sorted(
        (row, n) for row, n in expected if n > limit
    )
    assert len(lengths.truncated) == 3 and lengths.truncated[0].row == 21
    assert evaluate_fail_on(scanned, "truncated>10%") == [
        "truncated: 3 rows (14.3%), rule truncated>10%"
    ]


# --- fail-on, reports, input errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        ("pii,,empty", "''"),
        ("duplicate>5%", "'duplicate'"),
        ("pii:passport", "'pii:passport'"),
        ("empty>lots", "'empty>lots'"),
        ("truncated>150%", "'truncated>150%'"),
        ("lang==en", "'lang==en'"),
    ],
)
def test_bad_fail_on_names_the_token(expression: str, named: str) -> None:
    with pytest.raises(AdvisorInputError) as caught:
        parse_fail_on(expression)
    assert named in str(caught.value) and "fix:" in str(caught.value)
    assert caught.value.where == "--fail-on"


def test_fail_on_thresholds(report) -> None:
    assert evaluate_fail_on(report, "pii") == ["pii: 5 rows (23.8%), rule pii"]
    assert evaluate_fail_on(report, "pii>5") == []
    assert evaluate_fail_on(report, "pii>=5") != []
    assert evaluate_fail_on(report, "pii:card>0,pii:email>1") == [
        "pii:card: 1 rows (4.8%), rule pii:card>0"
    ]
    assert evaluate_fail_on(report, "duplicates>20%") == []


def test_markdown_and_html_reports(report) -> None:
    markdown = to_markdown(report)
    assert markdown.startswith("# Data scan")
    for heading in ("## Lengths (words)", "## Languages", "## Duplicates", "## Personal data"):
        assert heading in markdown
    assert "| 13 | 1 (user) | phone | 138****5678 |" in markdown
    page = to_html(report)
    assert page.startswith("<!doctype html>") and "<td>1101**********002X</td>" in page


def test_artifacts_and_metrics_for_tracking(report, tmp_path: Path) -> None:
    written = write_report_files(report, tmp_path)
    assert [p.name for p in written] == ["data_scan.md", "data_scan.html", "data_scan.json"]
    assert json.loads(written[2].read_text())["rows"] == 21
    metrics = scan_metrics(report)
    assert metrics["scan.rows"] == 21 and metrics["scan.pii"] == 5
    assert metrics["scan.pii_card"] == 1 and metrics["scan.duplicates_share"] == round(3 / 21, 4)
    assert metrics["scan.lang_de"] == 1 and metrics["scan.truncated"] == 1


def test_wrong_field_name_is_an_input_error(dirty: Path) -> None:
    with pytest.raises(InputError, match=r"dirty\.jsonl:1: no data layout matches") as caught:
        scan_file(dirty, options=ScanOptions(prompt_field="instruction"))
    assert "fields found: prompt (a string), response (a string)" in str(caught.value)
    assert "prompt_response (instruction, response)" in str(caught.value)
    with pytest.raises(AdvisorInputError, match="near-duplicate threshold"):
        ScanOptions(near_threshold=1.0)


def test_csv_rows(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("question,answer\nName a colour.,Red\nMail me at a.b@example.org,\n")
    scanned = scan_file(path, options=ScanOptions(prompt_field="question", response_field="answer"))
    assert scanned.rows == 2
    # rows named as training names them: data.csv:3 is the second record, under the header
    assert [(f.row, f.problem) for f in scanned.results["empty"].findings] == [
        (3, "answer is empty")
    ]
    assert [f.kind for f in scanned.results["pii"].findings] == ["email"]


# --- the pre-tune gate -------------------------------------------------------------------------


def _study(tmp_path: Path, model: Path, *, allow_pii: bool) -> StudySpec:
    from support import write_tiny_study

    path = write_tiny_study(tmp_path, model, "gate", data={"allow_pii": allow_pii})
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    rows[2]["prompt"] += " Reach me at anna@example.com or 13912345678."
    rows[5]["response"] = "ID 11010519491231002X"
    write_jsonl(tmp_path / "train.jsonl", rows)
    return load_study(path)


def test_gate_refuses_personal_data(tmp_path: Path, tiny_model: Path) -> None:
    spec = _study(tmp_path, tiny_model, allow_pii=False)
    with pytest.raises(AdvisorInputError) as caught:
        check_study_data(spec)
    message = str(caught.value)
    assert "personal data in train.jsonl rows 3, 6 (cn_id, email, phone)" in message
    assert "data.allow_pii: true" in message and caught.value.where == "data"
    assert "anna@example.com" not in message


def test_gate_allows_personal_data_when_the_study_says_so(tmp_path: Path, tiny_model: Path) -> None:
    spec = _study(tmp_path, tiny_model, allow_pii=True)
    scanned = check_study_data(spec)
    assert scanned.results["pii"].rows_with_pii == 2
    assert [f.rows for f in scanned.files] == [24, 4]
    assert scanned.results["lengths"].unit == "tokens"
    assert scanned.options.max_seq_length == spec.train.max_seq_length


def test_gate_passes_clean_data(tmp_path: Path, tiny_model: Path) -> None:
    from support import write_tiny_study

    spec = load_study(write_tiny_study(tmp_path, tiny_model, "clean"))
    assert check_study_data(spec).results["pii"].rows_with_pii == 0
