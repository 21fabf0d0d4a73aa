"""The one way a secret is shown (`mask`) and the one way secrets are kept out of text (`Redactor`).

Everything that leaves the process (stderr, `--json`, tables, state files, history) and may hold text a
server sent or a value the user configured goes through a `Redactor` built from every secret in effect:
every API key (from `--key`, the environment, the keys file) and every credential configured in a
provider's `headers`. The redactor removes each secret AND any 8-character piece of one, so a body cut
in the middle of a key (`… Bearer sk-or-v1-0123456789ab`) leaks nothing either.

`mask(key)` shows at most a known vendor prefix and the last 4 characters (`sk-or-…9f2c`, `hf_…uvwx`,
`…ue42`); a key with fewer than 12 characters after its prefix shows no tail at all (`sk-or-…`).

This module imports nothing from exobridge at module level; `config_redactor` imports config and keys
lazily, so anyone may import it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exobridge.core.config import Config, ProviderConfig

# Vendor prefixes shown by masks, longest first. Each is public (it names the vendor, not the key).
# A key with one of the first prefixes shows the second: `sk-or-v1-…` masks as `sk-or-…`.
KNOWN_PREFIXES: tuple[tuple[str, str], ...] = (
    ("sk-or-v1-", "sk-or-"),
    ("sk-or-", "sk-or-"),
    ("sk-ant-api03-", "sk-ant-"),
    ("sk-ant-", "sk-ant-"),
    ("sk-proj-", "sk-proj-"),
    ("sk-svcacct-", "sk-svcacct-"),
    ("sk-", "sk-"),
    ("hf_", "hf_"),
    ("gsk_", "gsk_"),
    ("xai-", "xai-"),
    ("pplx-", "pplx-"),
    ("r8_", "r8_"),
    ("ghp_", "ghp_"),
    ("github_pat_", "github_pat_"),
    ("AIza", "AIza"),
)
ELLIPSIS = "…"
TAIL = 4  # characters of a key's end a mask shows
MIN_HIDDEN = 8  # a mask shows the tail only when at least this many characters stay hidden
PIECE = 8  # any run of this many characters of a secret is a secret
MIN_SECRET = 4  # shorter values are not treated as secrets (they would blank ordinary words)
REDACTED = "[…]"  # what replaces a piece of a secret (the "…" can never be part of an ASCII key)

# A configured header whose name holds one of these words carries a credential.
SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "password", "session", "signature")
CREDENTIAL_SCHEMES = ("bearer", "basic", "token", "apikey", "api-key", "key")


def _prefix(key: str) -> tuple[str, str]:
    """(the key's known vendor prefix, what a mask shows of it); ("", "") when it has none."""
    for prefix, shown in KNOWN_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return prefix, shown
    return "", ""


def mask(key: str) -> str:
    """`sk-or-v1-abc…9f2c` → `sk-or-…9f2c`: a known vendor prefix and the last four characters, nothing else.

    Without a known prefix only the tail shows (`…ue42`); when fewer than 12 characters follow the prefix
    the tail is hidden too (`sk-or-…`, `…`), so a mask never shows a large share of a short key.
    """
    if not key:
        return ""
    prefix, shown = _prefix(key)
    body = key[len(prefix) :]
    if len(body) < TAIL + MIN_HIDDEN:
        return f"{shown}{ELLIPSIS}"
    return f"{shown}{ELLIPSIS}{body[-TAIL:]}"


def is_secret_header(name: str) -> bool:
    """Whether a header called `name` carries a credential (`Authorization`, `X-Api-Key`, `Cookie` …)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_HEADER_WORDS)


def header_secrets(name: str, value: str) -> list[str]:
    """The secrets in one configured header: the whole value and, for `Bearer X`, `X` too. [] for others."""
    if not is_secret_header(name):
        return []
    found = [value.strip()]
    scheme, _, credential = value.strip().partition(" ")
    if credential.strip() and scheme.lower() in CREDENTIAL_SCHEMES:
        found.append(credential.strip())
    return [secret for secret in found if secret]


def mask_header(name: str, value: str) -> str:
    """A header value to show: credentials (`Authorization`, `X-Api-Key`, …) masked, anything else as is."""
    if not is_secret_header(name):
        return value
    scheme, _, credential = value.partition(" ")
    if credential and scheme.lower() in CREDENTIAL_SCHEMES:
        return f"{scheme} {mask(credential.strip())}"
    return mask(value)


class Redactor:
    """Removes secrets, and every 8-character piece of one, from text.

    A stretch of text made of pieces of secrets is replaced: by the secret's mask when the stretch is
    exactly one whole secret (`Incorrect API key: sk-or-…9f2c`), else by `[…]`. The known vendor prefix
    alone (`sk-or-v1`) is public and is not a piece. Calling the redactor with no secrets returns the text.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self._pieces: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Also remove `secret` (values shorter than 4 characters are ignored)."""
        if not secret:
            return
        secret = secret.strip()
        if len(secret) < MIN_SECRET or secret in self._secrets:
            return
        self._secrets.add(secret)
        if len(secret) < PIECE:
            self._pieces.add(secret)
            return
        public = len(_prefix(secret)[0])
        for start in range(len(secret) - PIECE + 1):
            if start + PIECE > public:
                self._pieces.add(secret[start : start + PIECE])

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        if not self._pieces or not text:
            return text
        spans: list[tuple[int, int]] = []
        for piece in (*self._pieces, *self._secrets):  # whole secrets too: their public prefix is covered
            start = text.find(piece)
            while start != -1:
                spans.append((start, start + len(piece)))
                start = text.find(piece, start + 1)
        if not spans:
            return text
        spans.sort()
        merged: list[list[int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        out: list[str] = []
        done = 0
        for start, end in merged:
            out.append(text[done:start])
            found = text[start:end]
            out.append(mask(found) if found in self._secrets else REDACTED)
            done = end
        out.append(text[done:])
        return "".join(out)

    def redact_json(self, value: object) -> object:
        """A copy of a JSON-like value (dicts, lists, strings) with every string redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(str(k)) if isinstance(k, str) else k: self.redact_json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_json(item) for item in value]
        return value


def redact(text: str, secrets: str | Iterable[str | None] | None) -> str:
    """`text` without any of `secrets` or any 8-character piece of one (see Redactor)."""
    if secrets is None:
        return text
    if isinstance(secrets, str):
        secrets = [secrets]
    return Redactor(secrets).redact(text)


def config_redactor(
    config: Config | None = None,
    *,
    cli_key: str | None = None,
    env: Mapping[str, str] | None = None,
    stored: Mapping[str, str] | None = None,
    extra: Iterable[str | None] = (),
) -> Redactor:
    """A Redactor for every secret a run may hold: `--key`, every provider's key variables in `env`, every
    value in the keys file (even a malformed one: its quoted values are taken), every credential in a
    provider's `headers`, and `extra`. Never raises on a bad keys file: this runs on error paths too."""
    env = os.environ if env is None else env
    redactor = Redactor(extra)
    redactor.add(cli_key)
    if stored is None:
        from exobridge.core import keys_file

        stored = keys_file.secrets_in_keys_file()
    for value in stored.values():
        redactor.add(value)
    if config is not None:
        for provider in config.providers.values():
            for secret in provider_secrets(provider, env=env, stored={}):
                redactor.add(secret)
    return redactor


def provider_secrets(
    provider: ProviderConfig, *, env: Mapping[str, str] | None = None, stored: Mapping[str, str] | None = None
) -> list[str]:
    """Every secret `provider` may send: its key variables' values in `env`, its keys-file entry (`stored`,
    else read tolerantly from the keys file) and the credentials in its configured `headers`. Never raises."""
    env = os.environ if env is None else env
    found = [env.get(name) for name in provider.key_envs]
    if stored is None:
        from exobridge.core import keys_file

        stored = keys_file.secrets_in_keys_file()
        # A malformed file's values are not tied to names (`line0`, `line1` …): take them all.
        found.extend(value for name, value in stored.items() if name.startswith("line"))
    found.append(stored.get(provider.name))
    for header, value in provider.headers.items():
        found.extend(header_secrets(header, value))
    return [secret for secret in found if secret]
