"""Where a study's records live: the two stores' addresses, and checks that need no store open.

The defaults are embedded SQLite files under `<project>/mlruns/` (`optuna.db`, `mlflow.db`,
`artifacts/`); scale-out is an Optuna storage on PostgreSQL and an MLflow server or database.
Nothing here imports Optuna or MLflow, so the service and the light commands can name stores
without paying for them. Nothing here creates a store either: a command refused before its first
write leaves no empty `mlruns/` behind.
"""

from __future__ import annotations

import base64
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from advisor.errors import AdvisorInputError
from advisor.redact import redact_text, redact_url


@dataclass(frozen=True)
class Stores:
    """Where a study's records live. Defaults are embedded SQLite files under `mlruns/`."""

    optuna_url: str
    tracking_uri: str
    artifact_root: str

    @classmethod
    def resolve(
        cls,
        *,
        optuna_url: str | None = None,
        tracking_uri: str | None = None,
        artifact_root: str | None = None,
        root: Path | None = None,
    ) -> Stores:
        """Fill unset stores with the embedded defaults under `<root>/mlruns/` (root = cwd).

        Paths are made absolute so a trial subprocess or `advisor ui` started elsewhere
        points at the same files. The folder is created when a store is first opened.
        """
        base = (root or Path.cwd()) / "mlruns"
        if artifact_root is None and tracking_uri and tracking_uri.startswith(("http:", "https:")):
            artifact_root = ""  # a tracking server stores (or proxies) artifacts itself
        # Nothing is created here: the SQLite files' folder appears when a store is first
        # opened, so a command refused before that leaves no empty mlruns/ behind.
        return cls(
            optuna_url=optuna_url or f"sqlite:///{(base / 'optuna.db').resolve()}",
            tracking_uri=tracking_uri or f"sqlite:///{(base / 'mlflow.db').resolve()}",
            artifact_root=(base / "artifacts").resolve().as_uri()
            if artifact_root is None
            else artifact_root,
        )


def check_tracking_reachable(
    uri: str, timeout_s: float = 10.0, *, where: str = "tracking.uri"
) -> None:
    """Refuse (exit 2) an MLflow store that cannot be reached, before anything is written.

    MLflow retries an unreachable database or server for minutes with backoff; a user who
    mistyped a host should hear so in seconds, with the credentials kept out of the message.
    `where` names the field or option the URI came from.
    """

    def refuse(error: Exception) -> None:
        raise AdvisorInputError(
            f"cannot reach the MLflow tracking store {redact_url(uri)!r}: "
            f"{type(error).__name__}: {redact_text(str(error), uri)[:500]}",
            where=where,
            fix="start the MLflow server (`mlflow server --backend-store-uri postgresql://...`) "
            "or fix host, port and credentials; leave it out for the local SQLite store",
        ) from error

    if uri.startswith(("http://", "https://")):
        try:  # inside: a malformed URL (an unclosed IPv6 `[`) is the user's to fix too
            parts = urlsplit(uri)
            host = parts.netloc.rsplit("@", 1)[-1]  # credentials go in a header, not the URL
            path = parts.path.rstrip("/") + "/health"
            request = urllib.request.Request(urlunsplit(parts._replace(netloc=host, path=path)))
            if parts.username:
                user = f"{parts.username}:{parts.password or ''}"
                request.add_header(
                    "Authorization", f"Basic {base64.b64encode(user.encode()).decode()}"
                )
            with urllib.request.urlopen(request, timeout=timeout_s):
                return
        except Exception as error:
            refuse(error)
    elif "://" in uri and not uri.startswith(("sqlite:", "file:")):
        import sqlalchemy

        try:
            engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": int(timeout_s)})
            with engine.connect():
                pass
            engine.dispose()
        except Exception as error:
            refuse(error)


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI, None for other stores (server, PostgreSQL)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return Path(tracking_uri[len(prefix) :].split("?", 1)[0])


def refuse_missing_store(name: str, storage: str | None, root: Path | None) -> None:
    """Refuse before anything is created: opening a SQLite store that is not there would make
    an empty `mlruns/` and database, only to report that the study is not in it."""
    url = storage or f"sqlite:///{(root or Path.cwd()) / 'mlruns' / 'optuna.db'}"
    path = sqlite_path(url)  # the file alone: a `?password=...` after it is never shown
    if path is None or str(path) == ":memory:":
        return
    if not path.is_file():
        raise AdvisorInputError(
            f"no study named {name!r}: there is no Optuna store at {path}",
            where="STUDY",
            fix="run `advisor tune STUDY_FILE` first, or run this command in the folder that "
            "holds the study's mlruns/ (or give the study file, whose storage: says where)",
        )
