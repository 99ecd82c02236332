"""What `advisor serve` is configured with: address, token, limits, data roots and stores.

Secure defaults: bound to 127.0.0.1, no CORS, 256 KiB request bodies, and without a token every
write answers 403 (reads still work). A host other than loopback needs a strong token, or the
service refuses to start: a study submission makes workers read files and train on this
machine's data, and a token other machines may guess at is a password nobody chose well.
"""

from __future__ import annotations

import collections
import ipaddress
import math
import os
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from advisor.errors import AdvisorInputError

TOKEN_ENV = "ADVISOR_SERVE_TOKEN"
DEFAULT_PORT = 8321
DEFAULT_MAX_BODY_BYTES = 256 * 1024
MIN_TOKEN_CHARS = 32
"""A token for a service other machines reach: `secrets.token_urlsafe(32)` gives 43."""
MIN_TOKEN_BITS = 64.0
"""Floor of `token_bits` for such a token. Any 32 random characters pass, even decimal digits
(their estimate stays above 75 bits); a repeated character, a two-letter pattern or a short
alphabet does not. A floor against careless tokens, not a password-strength meter."""
MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


class ServeSettings(BaseModel):
    """Settings of one service process (the CLI's options; tests build them directly)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to bind; loopback unless a token is set.")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="TCP port (0: any free port).")
    token: SecretStr | None = Field(
        None, description=f"Bearer token for writes (from ${TOKEN_ENV} or a token file)."
    )
    read_requires_token: bool = Field(
        False, description="Also require the token for GETs, recommend and estimate."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; none: no CORS headers."
    )
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES, gt=0, description="Largest request body accepted (413 above)."
    )
    data_roots: list[Path] = Field(
        default_factory=lambda: [Path.cwd()],
        description="Folders every path in a submitted study (and a model path) must lie in; "
        "relative paths start at the first.",
    )
    studies_dir: Path = Field(
        default_factory=lambda: Path.cwd() / "served-studies",
        description="Where submitted studies are written as self-contained study files.",
    )
    root: Path = Field(
        default_factory=Path.cwd, description="Folder whose mlruns/ holds the default stores."
    )
    storage: str | None = Field(None, description="Optuna storage URL (default: mlruns/).")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI (default: mlruns/).")
    mlflow_ui_url: str | None = Field(
        None, description="Base URL of an MLflow UI: run links become full UI URLs."
    )

    def resolved_roots(self) -> list[Path]:
        return [Path(root).expanduser().resolve() for root in self.data_roots]

    def check(self) -> None:
        """Refuse unsafe or impossible combinations before the service starts (exit 2)."""
        if self.token is None and not is_loopback(self.host):
            raise AdvisorInputError(
                f"refusing to bind {self.host!r} without a token: anyone who reaches it could "
                "submit studies",
                where="--host",
                fix=f"set {TOKEN_ENV} or pass --token-file FILE, or bind 127.0.0.1",
            )
        weakness = None if self.token is None else token_weakness(self.token.get_secret_value())
        if weakness and not is_loopback(self.host):
            raise AdvisorInputError(
                f"refusing to bind {self.host!r} with a weak token: {weakness}; other machines "
                "could guess it",
                where=f"{TOKEN_ENV} / --token-file",
                fix=f"make a token with `{MAKE_TOKEN}` and put it in {TOKEN_ENV} or a token file "
                "(chmod 600), or bind 127.0.0.1",
            )
        if self.read_requires_token and self.token is None:
            raise AdvisorInputError(
                "--read-token needs a token",
                where="--read-token",
                fix=f"set {TOKEN_ENV} or pass --token-file FILE",
            )
        for root in self.data_roots:
            if not Path(root).expanduser().is_dir():
                raise AdvisorInputError(
                    f"data root {str(root)!r} is not a folder",
                    where="--data-root",
                    fix="create it, or pass an existing folder",
                )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_weakness(token: str) -> str | None:
    """Why `token` is too weak for a service other machines reach, or None. The message
    describes the token (its length, its estimate), never its characters."""
    if len(token) < MIN_TOKEN_CHARS:
        return f"it has {len(token)} characters, fewer than {MIN_TOKEN_CHARS}"
    if any(token[period:] == token[:-period] for period in range(1, len(token) // 2 + 1)):
        return "it is one run of characters repeated"
    bits = token_bits(token)
    if bits < MIN_TOKEN_BITS:
        return f"its characters carry about {bits:.0f} bits, fewer than {MIN_TOKEN_BITS:.0f}"
    return None


def token_bits(token: str) -> float:
    """Length x the Shannon entropy of the token's own character frequencies: what a random
    string with that mix of characters would hold. It underestimates a truly random token a
    little (a sample never shows its whole alphabet) and cannot see a pattern or a word, which
    is why it is only a floor."""
    counts = collections.Counter(token)
    n = len(token)
    return n * -sum(c / n * math.log2(c / n) for c in counts.values())


def read_token(token_file: Path | None) -> SecretStr | None:
    """The token from `token_file` (not world-readable), else ${TOKEN_ENV}, else None.

    The value is never printed: it lives in a SecretStr, whose repr is masked.
    """
    if token_file is not None:
        try:
            mode = token_file.stat().st_mode
            text = token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise AdvisorInputError(
                f"cannot read token file {str(token_file)!r}: {error.strerror}",
                where="--token-file",
                fix="give a readable file holding the token on one line",
            ) from None
        if mode & stat.S_IROTH:
            raise AdvisorInputError(
                f"token file {str(token_file)!r} is readable by every user",
                where="--token-file",
                fix=f"chmod 600 {token_file}",
            )
    else:
        text = os.environ.get(TOKEN_ENV, "").strip()
        if not text:
            return None
    if not text:
        raise AdvisorInputError(
            f"token file {str(token_file)!r} is empty",
            where="--token-file",
            fix="write the token into it, e.g. `openssl rand -hex 32 > FILE`",
        )
    return SecretStr(text)
