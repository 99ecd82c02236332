"""Credentials in store URIs never reach output, tags or the logged study file: the password of
the user-info, a token as lone user-info on http(s), and secret query and fragment parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from advisor.redact import is_secret_name, redact_query, redact_target, redact_text, redact_url
from advisor.study import dump_resolved, load_study


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # user-info: the password hidden, the user kept (it says who connects)
        ("postgresql://bob:s3cret@db:5432/optuna", "postgresql://bob:***@db:5432/optuna"),
        ("https://ci:tok%40en@mlflow.example/", "https://ci:***@mlflow.example/"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("postgresql://bob:p@ss@db/optuna", "postgresql://bob:***@db/optuna"),  # last @ ends it
        ("https://hf_abc123@huggingface.co/x", "https://***@huggingface.co/x"),  # a lone token
        ("postgresql://bob@db/optuna", "postgresql://bob@db/optuna"),  # a lone database user
        # query parameters
        ("sqlite:///x.db?password=s3cret", "sqlite:///x.db?password=***"),
        (
            "postgresql://db/optuna?sslmode=require&password=s3cret&application_name=a",
            "postgresql://db/optuna?sslmode=require&password=***&application_name=a",
        ),
        ("http://host/?token=abc", "http://host/?token=***"),
        ("http://host/?access_token=abc;user=me", "http://host/?access_token=***;user=me"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Date=1&X-Amz-Signature=f0",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Date=1&X-Amz-Signature=***",
        ),
        (
            "https://a.blob.core.windows.net/c?sv=2022&sig=Zm9v",
            "https://a.blob.core.windows.net/c?sv=2022&sig=***",
        ),
        (
            "http://h/?apiKey=1&API_KEY=2&client_secret=3&PWD=4",
            "http://h/?apiKey=***&API_KEY=***&client_secret=***&PWD=***",
        ),
        ("http://h/?password=", "http://h/?password="),  # nothing to hide
        # fragment parameters (OAuth's implicit flow)
        (
            "https://h/cb#access_token=abc&expires_in=3600",
            "https://h/cb#access_token=***&expires_in=3600",
        ),
        ("https://h/docs#section-2", "https://h/docs#section-2"),
        # everything at once, and what must stay as it is
        ("https://u:pw@h:1/p?token=t#sig=s", "https://u:***@h:1/p?token=***#sig=***"),
        ("sqlite:////tmp/mlruns/optuna.db", "sqlite:////tmp/mlruns/optuna.db"),
        ("http://h/?signal=1&design=2&page=3", "http://h/?signal=1&design=2&page=3"),
        ("not a url?password=x", "not a url?password=x"),  # no scheme: not a URL
        (None, None),
        ("", ""),
    ],
)
def test_redact_url_hides_every_credential_and_nothing_else(
    url: str | None, shown: str | None
) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url", ["http://[::1/?token=s3cret", "postgresql://[x/db?password=s3cret", "a://", "://x"]
)
def test_a_malformed_url_is_redacted_not_raised(url: str) -> None:
    """`urllib.parse` raises on an unclosed IPv6 bracket; redaction runs inside error messages
    and the logged study file, where an exception would be a traceback."""
    shown = redact_url(url)
    assert "s3cret" not in str(shown)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        *[(n, True) for n in ("password", "PASSWD", "pwd", "pass", "token", "access_token",
                               "refresh-token", "authToken", "api_key", "apiKey", "x-api-key",
                               "secret", "client_secret", "X-Amz-Signature", "X-Amz-Credential",
                               "X-Amz-Security-Token", "sig", "sslpassword", "sslkey", "auth",
                               "Authorization", "session", "jwt", "passphrase")],
        *[(n, False) for n in ("user", "username", "host", "sslmode", "signal", "design",
                                "X-Amz-Date", "page", "application_name", "passthrough_mode")],
    ],
)  # fmt: skip
def test_secret_names_any_case_and_separator(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_query_and_request_target_keep_their_text_apart_from_the_values() -> None:
    assert redact_query("a=%2F&token=x%20y&b") == "a=%2F&token=***&b"
    assert redact_target("/v1/studies?token=abc&x=1") == "/v1/studies?token=***&x=1"
    assert redact_target("/v1/studies") == "/v1/studies"


def test_redact_text_hides_urls_it_quotes_and_credentials_echoed_alone() -> None:
    url = "postgresql://bob:hunter2%21@db/x?sslpassword=pa55word&token=t0k3n"
    driver = (
        "connection to postgresql://bob:hunter2%21@db/x?sslpassword=pa55word&token=t0k3n failed:"
        " password 'hunter2!' rejected; sslpassword pa55word; token t0k3n"
    )
    shown = redact_text(driver, url)
    for secret in ("hunter2", "pa55word", "t0k3n"):
        assert secret not in shown, shown
    assert "postgresql://bob:***@db/x?sslpassword=***&token=***" in shown
    # Without the URL given: every URL in the text is still redacted.
    quoted = "cannot reach 'http://h:1/?access_token=abcdef' (refused)"
    assert redact_text(quoted) == "cannot reach 'http://h:1/?access_token=***' (refused)"
    # A value too short to search for alone is still hidden inside its URL.
    assert redact_text("at sqlite:///x.db?key=1, line 1", "sqlite:///x.db?key=1") == (
        "at sqlite:///x.db?key=***, line 1"
    )


def test_the_logged_study_file_carries_no_credential(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[1] / "studies" / "demo.yaml"
    spec = yaml.safe_load(demo.read_text())
    for key in ("train", "eval"):
        spec["data"][key] = str((demo.parent / spec["data"][key]).resolve())
    spec["data"]["root"] = str(demo.parent.resolve())  # the data lies outside tmp_path
    spec["storage"] = "postgresql://bob:s3cret@db/optuna?sslpassword=s3cret2"
    spec["tracking"] = {"uri": "https://mlflow.example/?access_token=t0ken#token=t0ken2"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    text = dump_resolved(load_study(path))
    for secret in ("s3cret", "t0ken"):
        assert secret not in text
    assert "bob:***@db/optuna?sslpassword=***" in text
    assert "mlflow.example/?access_token=***#token=***" in text
