"""Keep credentials out of what advisor prints, logs and records.

A store's URI carries credentials in three places: the user-info
(`postgresql://bob:secret@db/optuna`, `https://TOKEN@mlflow.example`), query parameters
(`postgresql://db/optuna?password=...`, a presigned `...?X-Amz-Signature=...`) and fragment
parameters (OAuth's `#access_token=...`). Everything shown to people, logged or written to MLflow
goes through `redact_url` (or `redact_text` for a message that quotes URLs); only the live
connection uses the real URI.

A parameter is secret when its name suggests one (`is_secret_name`). The test errs toward
hiding: a harmless value hidden by mistake costs a look at the study file, a token shown costs
rotating it. The URL is taken apart as text, not with `urllib.parse`, so a malformed URL (an
unclosed `[` of an IPv6 host) is redacted too instead of raising inside an error message.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus

MASK = "***"

_SECRET_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "signature",
    "credential",
    "auth",
    "key",
)
"""Anywhere in a name (`access_token`, `sslpassword`, `X-Amz-Signature`, `apiKey`, `authSource`)."""
_SECRET_WORDS = frozenset({"pw", "pwd", "pass", "sig", "jwt", "otp", "cookie", "session"})
"""Whole words of a name only (`sig` of Azure's SAS URLs, not `signal` or `design`)."""
_LONE_USER_IS_SECRET = frozenset({"http", "https", "ws", "wss"})
"""Schemes where `scheme://WORD@host` puts a token in the user name (GitHub, Hugging Face)."""
_MIN_SECRET_CHARS = 4
"""Shorter values are not searched for in free text: hiding every `1` would garble a message."""
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]*[^\s'\"<>`.,;:!?)\]]")
"""A URL in prose: up to white space or a quote, without the punctuation that ends a sentence."""


def is_secret_name(name: str) -> bool:
    """Whether a parameter called `name` (any case, any separators) likely holds a credential."""
    lowered = name.lower()
    if any(part in lowered for part in _SECRET_PARTS):
        return True
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).lower()
    return any(word in _SECRET_WORDS for word in re.split(r"[^a-z0-9]+", words))


def redact_query(query: str) -> str:
    """`a=1&token=xyz` -> `a=1&token=***`: the value of each secret parameter hidden, the rest of
    the text kept as it was (no re-encoding)."""
    parts = []
    for item in re.split(r"([&;])", query):
        name, equals, value = item.partition("=")
        if equals and value and is_secret_name(unquote_plus(name)):
            item = f"{name}={MASK}"
        parts.append(item)
    return "".join(parts)


def redact_target(target: str) -> str:
    """A request target or a URL's tail (`/path?query#fragment`) with secret parameters hidden."""
    rest, hash_, fragment = target.partition("#")
    path, question, query = rest.partition("?")
    if question:
        query = redact_query(query)
    if hash_ and "=" in fragment:
        fragment = redact_query(fragment)
    return f"{path}{question}{query}{hash_}{fragment}"


def _split(url: str) -> tuple[str, str, str, str]:
    """(scheme, user-info, host and port, the rest from the first `/`, `?` or `#`)."""
    scheme, _, after = url.partition("://")
    end = min((i for i in map(after.find, "/?#") if i >= 0), default=len(after))
    authority, rest = after[:end], after[end:]
    userinfo, at, host = authority.rpartition("@")
    return scheme, userinfo if at else "", host, rest


def redact_url(url: str | None) -> str | None:
    """`url` with its credentials replaced by `***`; None (and text that is no URL) unchanged.

    The password of the user-info (the user name kept: it says who connects), a lone user-info
    on http(s) (there it is a token), and the value of every query or fragment parameter whose
    name suggests a secret.
    """
    if not url or "://" not in url:
        return url
    scheme, userinfo, host, rest = _split(url)
    if ":" in userinfo:
        userinfo = f"{userinfo.split(':', 1)[0]}:{MASK}"
    elif userinfo and scheme.lower() in _LONE_USER_IS_SECRET:
        userinfo = MASK
    netloc = f"{userinfo}@{host}" if userinfo else host
    return f"{scheme}://{netloc}{redact_target(rest)}"


def secrets_in(url: str | None) -> set[str]:
    """The credentials `redact_url` hides in `url`, as written and percent-decoded."""
    if not url or "://" not in url:
        return set()
    scheme, userinfo, _, rest = _split(url)
    found = []
    user, colon, password = userinfo.partition(":")
    if colon:
        found.append(password)
    elif user and scheme.lower() in _LONE_USER_IS_SECRET:
        found.append(user)
    rest, _, fragment = rest.partition("#")
    query = rest.partition("?")[2]
    for item in re.split(r"[&;]", f"{query}&{fragment}"):
        name, equals, value = item.partition("=")
        if equals and is_secret_name(unquote_plus(name)):
            found.append(value)
    decoded = [unquote(value) for value in found] + [unquote_plus(value) for value in found]
    return {value for value in [*found, *decoded] if len(value) >= _MIN_SECRET_CHARS}


def redact_text(text: str, *urls: str | None) -> str:
    """`text` with credentials hidden: in every URL it quotes, and wherever a credential of one
    of `urls` appears on its own (a driver's error may echo a password, decoded, without its
    URL). For messages that quote a URL or a driver's error, and for a server's log."""
    for url in urls:
        if url and "://" in url:
            text = text.replace(url, str(redact_url(url)))
    text = _URL.sub(lambda match: str(redact_url(match.group(0))), text)
    for secret in sorted({s for url in urls for s in secrets_in(url)}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
