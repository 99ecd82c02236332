"""Keep credentials out of what advisor prints, logs and records.

Storage and tracking URIs may carry a password (`postgresql://user:secret@db/optuna`,
`https://user:token@mlflow.example`). Everything shown to people or written to MLflow goes through
`redact_url`; only the live connection uses the real URI.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str | None) -> str | None:
    """`url` with its password replaced by `***` (user and host kept); None stays None."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def redact_text(text: str, *urls: str | None) -> str:
    """`text` with the password of each of `urls` replaced by `***` wherever it appears.

    For messages that quote a URL or echo a driver's error, which may repeat the password.
    """
    for url in urls:
        if url and "://" in url:
            password = urlsplit(url).password
            if password:
                text = text.replace(password, "***")
    return text
