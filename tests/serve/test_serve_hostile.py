"""The service against hostile requests, over real HTTP: credentials in the query string, JSON
bodies nested 100,000 deep or holding numbers JSON has not, a "billion laughs" study, numbers
past any model, and weak tokens where other machines connect. Each is a 4xx naming the field,
never a 500, and no credential reaches an answer or the access log."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_serve import STRONG_TOKEN, TOKEN, serving

from advisor.errors import AdvisorInputError
from advisor.serve import ServeSettings
from advisor.serve.app import create_app
from advisor.serve.auth import ACCESS_LOGGER, AccessLogRedaction, secret_parameters
from advisor.serve.client import SAMPLE_TRAITS, Client
from advisor.serve.settings import MIN_TOKEN_CHARS, token_weakness

SECRET = "Zq8-leaked-credential-Wx3"

TRAITS = SAMPLE_TRAITS[0]
DEEP = 100_000


def _settings(tmp_path: Path, **overrides: object) -> ServeSettings:
    (tmp_path / "data").mkdir(exist_ok=True)
    values = {"data_roots": [tmp_path / "data"], "studies_dir": tmp_path / "served", "token": TOKEN}
    return ServeSettings(root=tmp_path, **{**values, **overrides})


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    with serving(_settings(tmp_path)) as url:
        yield url


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def access_log() -> Iterator[list[str]]:
    """The lines uvicorn's access logger writes while the block runs (after its filters)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # serving() runs uvicorn at "warning", which would hide them
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# -- credentials in the query string ----------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/v1/studies?token={SECRET}"),
        ("GET", f"/v1/studies?access_token={SECRET}"),
        ("POST", f"/v1/recommend?x=1&api_key={SECRET}"),
        ("GET", f"/v1/health?X-Amz-Signature={SECRET}"),
        ("GET", f"/v1/no-such-path?Password={SECRET}"),
    ],
)
def test_a_credential_in_the_query_string_is_400_and_never_logged(
    base: str, method: str, path: str
) -> None:
    """RFC 6750 allows `?access_token=`; we refuse it, even with a valid header beside it."""
    with access_log() as lines:
        answer = Client(base, token=TOKEN).request(method, path, json_body=TRAITS)
        deadline = time.monotonic() + 5  # the line is written as the response starts
        while not lines and time.monotonic() < deadline:
            time.sleep(0.01)
    assert answer.status == 400, answer.body
    body = answer.json()
    assert "not accepted in the query string" in body["message"]
    assert "Authorization: Bearer" in body["fix"]
    assert SECRET not in answer.body.decode()
    assert lines and all(SECRET not in line for line in lines), lines
    assert "=***" in lines[0] and " 400" in lines[0]


def test_ordinary_query_parameters_pass(base: str) -> None:
    answer = Client(base).get("/v1/health?verbose=1&design=x&signal=2")
    assert answer.status == 200, answer.body


def test_the_access_log_filter_hides_secret_parameters_of_any_line() -> None:
    """Also on a request no route refuses (a fragment cannot be sent, but a proxy may log it)."""
    record = logging.LogRecord(
        ACCESS_LOGGER,
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/v1/studies?sig={SECRET}&page=2#id_token={SECRET}", "1.1", 200),
        None,
    )
    assert AccessLogRedaction().filter(record)
    assert SECRET not in record.getMessage()
    assert "/v1/studies?sig=***&page=2#id_token=***" in record.getMessage()


def test_secret_parameters_are_found_by_name_encoded_or_not() -> None:
    assert secret_parameters("a=1&Access%5FToken=x;sig=y&token=z&token=w") == [
        "Access_Token",
        "sig",
        "token",
    ]
    assert secret_parameters("signal=1&design=2&page=3&token") == []  # `token` alone has no value


# -- JSON bodies within bounds -----------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/recommend", "/v1/estimate", "/v1/studies"])
def test_a_body_nested_100k_deep_is_422_not_500(tmp_path: Path, path: str) -> None:
    """Python's json recurses per level: unchecked, this was a RecursionError."""
    body = ("[" * DEEP + "]" * DEEP).encode()
    settings = _settings(tmp_path, max_body_bytes=4 * DEEP)
    with serving(settings) as url:
        answer = Client(url, token=TOKEN).post(path, text=body, content_type="application/json")
    assert answer.status == 422, answer.body
    assert "nested" in answer.json()["message"] and answer.json()["fix"]
    assert len(answer.body) < 2000  # the brackets are not quoted back
    assert not (tmp_path / "served").exists()


@pytest.mark.parametrize(
    ("number", "said"),
    [
        ("1e400", "out of a float's range"),
        ("-1e400", "out of a float's range"),
        ("NaN", "not a number JSON allows"),
        ("Infinity", "not a number JSON allows"),
    ],
)
def test_a_number_json_cannot_hold_is_422_naming_the_field(
    base: str, number: str, said: str
) -> None:
    """`1e400` became inf and `Infinity` passed "greater than 0": the answer said Infinity."""
    text = '{"goal": "knowledge", "examples": 200, "model": "llama-3-8b", "vram_gb": NUMBER}'
    text = text.replace("NUMBER", number)
    answer = Client(base).post("/v1/recommend", text=text, content_type="application/json")
    assert answer.status == 422, answer.body
    (error,) = answer.json()["errors"]
    assert error["path"] == "vram_gb" and said in error["message"] and error["fix"]


def test_a_non_finite_number_deep_in_a_body_is_named_by_its_path(base: str) -> None:
    text = '{"yaml": "name: x", "extra": {"a": [1, 2, NaN]}}'
    answer = Client(base, token=TOKEN).post(
        "/v1/studies", text=text, content_type="application/json"
    )
    assert answer.status == 422, answer.body
    assert [e["path"] for e in answer.json()["errors"]] == ["extra.a.2"]


@pytest.mark.parametrize(
    ("field", "value", "fix"),
    [
        ("r", 10**300, "use a value of at most 65536"),
        ("seq_len", 10**9, "use a value of at most 16777216"),
        ("batch_size", 0, "use a value of at least 1"),
        ("model", "m" * 5000, "use at most 4096 characters"),
    ],
)
def test_estimate_numbers_past_any_model_are_422(
    base: str, field: str, value: object, fix: str
) -> None:
    """A 300-digit rank is valid JSON; its estimate overflowed to infinity."""
    request = {"model": "llama-3-8b", "method": "lora", field: value}
    answer = Client(base).post("/v1/estimate", json_body=request)
    assert answer.status == 422, answer.body
    (error,) = answer.json()["errors"]
    assert error["path"] == field and error["fix"].startswith(fix)
    assert len(error["message"]) < 300  # the value is quoted in part only


def test_a_billion_laughs_study_is_a_fast_422(tmp_path: Path) -> None:
    """Nine levels of ten aliases: 10**9 strings once expanded, landing on a scalar field."""
    levels = ['a0: &a0 "lol"']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    study = "\n".join([*levels, "name: laughs", "seed: *a9", ""])
    with serving(_settings(tmp_path)) as url:
        started = time.monotonic()
        answer = Client(url, token=TOKEN).post("/v1/studies", text=study)
        elapsed = time.monotonic() - started
    assert answer.status == 422, answer.body
    assert elapsed < 5
    assert "alias" in answer.body.decode().lower()
    assert len(answer.body) < 5000
    assert not (tmp_path / "served").exists()


# -- tokens where other machines connect ------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("k" * 8, "8 characters, fewer than 32"),
        ("x" * 64, "one run of characters repeated"),
        ("ab" * 20, "one run of characters repeated"),
        ("aabbabbbabaababbbaabaabbbaababbbaaab", "bits, fewer than 64"),
    ],
)
def test_a_weak_token_is_refused_for_a_public_bind_only(
    tmp_path: Path, token: str, why: str
) -> None:
    with pytest.raises(AdvisorInputError, match="weak token") as error:
        create_app(_settings(tmp_path, host="0.0.0.0", token=token))
    assert why in error.value.message and "secrets.token_urlsafe(32)" in (error.value.fix or "")
    assert token not in str(error.value)
    create_app(_settings(tmp_path, host="127.0.0.1", token=token))  # loopback: the user's call


def test_any_random_token_of_the_minimum_length_passes() -> None:
    """The floor must not refuse what `secrets` makes, nor 32 random decimal digits."""
    import random
    import secrets
    import string

    rng = random.Random(14)
    for _ in range(200):
        assert token_weakness(secrets.token_urlsafe(32)) is None
        assert token_weakness(secrets.token_hex(16)) is None
        digits = "".join(rng.choice(string.digits) for _ in range(MIN_TOKEN_CHARS))
        assert token_weakness(digits) is None, digits
    assert token_weakness(STRONG_TOKEN) is None
