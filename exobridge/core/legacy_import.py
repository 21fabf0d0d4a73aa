"""Reading the old token manager's `~/.token_manager_config.json` and merging its providers into our config.

The legacy file is `{"providers": [...], "current_provider_index": 0, ...}`; each provider has a `name`,
`base_url`, `chat_endpoint`, optional `type` ("local" for Exo), `priority`, `status`, and a key either in
plaintext (`api_key`) or encrypted (`api_key_encrypted` = base64 of a Fernet token whose key is in
`~/.token_manager_key`). Encrypted keys are decrypted locally, only when the optional `cryptography`
package is importable; the ciphertext never leaves this process.

Merging never clobbers: a value the user's file already sets explicitly is kept (and reported), and a value
equal to what the config already gives is not written again.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from exobridge.core import config as config_mod
from exobridge.core.secrets import mask

if TYPE_CHECKING:
    import tomlkit

LEGACY_CONFIG_NAME = ".token_manager_config.json"
LEGACY_KEY_NAME = ".token_manager_key"
HF_OLD_HOST = "api-inference.huggingface.co"
HF_ROUTER_URL = "https://router.huggingface.co/v1"
EXO_PORT = 52415
CHAT_SUFFIX = "/chat/completions"
# Fields of a legacy provider this import turns into config; the rest are reported as not imported.
USED_FIELDS = {"name", "type", "priority", "status", "base_url", "chat_endpoint", "api_key", "api_key_encrypted"}
USED_TOP_LEVEL = {"providers"}
STATUSES = {"active", "exhausted", "error", "disabled"}


class LegacyImportError(Exception):
    """The legacy file cannot be imported. `str()` is one line naming the file."""


@dataclass
class ImportedProvider:
    legacy_name: str
    name: str
    kind: str
    url: str
    rank: int
    enabled: bool
    key_env: str | None = None
    key: str | None = field(default=None, repr=False)
    key_origin: str | None = None  # "plaintext" | "decrypted"
    key_problem: str | None = None  # why an existing legacy key could not be imported
    notes: list[str] = field(default_factory=list)
    not_imported: list[str] = field(default_factory=list)

    @property
    def masked_key(self) -> str:
        return mask(self.key) if self.key else ""


@dataclass
class LegacyImport:
    source: Path
    providers: list[ImportedProvider]
    skipped: list[str] = field(default_factory=list)  # legacy providers that could not be mapped, with why
    not_imported: list[str] = field(default_factory=list)  # top-level legacy settings
    # `[budget]` keys from `billing_protection` / `free_models_only`: {key: (value, legacy setting)}
    budget: dict[str, tuple[Any, str]] = field(default_factory=dict)


def default_path() -> Path:
    return Path.home() / LEGACY_CONFIG_NAME


def default_key_path() -> Path:
    return Path.home() / LEGACY_KEY_NAME


def slugify(name: str) -> str:
    """`Together AI` → `together-ai`; accents are dropped (`Modèle` → `modele`)."""
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def _status(raw: Any) -> str | None:
    """`"active"` or the old `"ProviderStatus.ACTIVE"` → `active`; None when absent."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    value = raw.strip()
    if value.startswith("ProviderStatus."):
        value = value[len("ProviderStatus.") :]
    return value.lower()


def _api_url(base_url: str, chat_endpoint: Any) -> tuple[str, str | None]:
    """The OpenAI-style base (the part before `/chat/completions`) and a note when it is a guess.

    `https://api.together.xyz` + `/v1/chat/completions` → `https://api.together.xyz/v1`.
    """
    base = base_url.rstrip("/")
    if not isinstance(chat_endpoint, str) or not chat_endpoint.strip():
        return base, None
    endpoint = chat_endpoint.strip().rstrip("/")
    if endpoint.startswith(("http://", "https://")):
        if endpoint.endswith(CHAT_SUFFIX):
            return endpoint[: -len(CHAT_SUFFIX)], None
        return base, f"chat_endpoint {endpoint} is not an OpenAI-style …/chat/completions; check the url"
    if not endpoint.startswith("/"):
        endpoint = "/" + endpoint
    if not endpoint.endswith(CHAT_SUFFIX):
        return base, f"chat_endpoint {endpoint} is not an OpenAI-style …/chat/completions; check the url"
    prefix = endpoint[: -len(CHAT_SUFFIX)]
    if prefix and not base.endswith(prefix):
        return base + prefix, None
    return base, None


def _decode_token(stored: str) -> bytes:
    """The Fernet token inside the legacy base64 layer (tolerating a bare token too)."""
    text = stored.strip()
    if text.startswith("gAAAA"):  # a bare Fernet token: version byte 0x80 in urlsafe base64
        return text.encode()
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return base64.urlsafe_b64decode(padded)


def decrypt_key(stored: str, key_file: Path) -> tuple[str | None, str | None]:
    """(key, None) or (None, why not). Local only: the ciphertext is never sent anywhere."""
    try:
        from cryptography.fernet import Fernet, InvalidToken
    except ImportError:
        return None, "the optional 'cryptography' package is not installed, so the encrypted key cannot be read"
    try:
        fernet_key = key_file.read_bytes().strip()
    except FileNotFoundError:
        return None, f"the encrypted key needs {key_file}, which does not exist"
    except OSError as exc:
        return None, f"cannot read {key_file} ({type(exc).__name__})"
    try:
        fernet = Fernet(fernet_key)
    except (ValueError, TypeError):
        return None, f"{key_file} is not a Fernet key"
    try:
        plain = fernet.decrypt(_decode_token(stored))
        return plain.decode("utf-8"), None
    except (InvalidToken, binascii.Error, ValueError, UnicodeDecodeError):
        return None, f"the encrypted key does not decrypt with {key_file} (wrong key file?)"


def _load_json(path: Path) -> Any:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise LegacyImportError(f"{path}: no such file (give the old token manager's config as PATH)") from None
    except IsADirectoryError:
        raise LegacyImportError(f"{path}: is a directory, not the token manager's JSON file") from None
    except OSError as exc:
        raise LegacyImportError(f"{path}: cannot read ({type(exc).__name__})") from None
    except UnicodeDecodeError as exc:
        raise LegacyImportError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text.removeprefix("\ufeff"))  # a BOM from a Windows editor
    except json.JSONDecodeError as exc:
        raise LegacyImportError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise LegacyImportError(f"{path}: not a token manager config (nested too deeply)") from None


def _kind_of(entry: dict[str, Any], name: str, host: str) -> str:
    lowered = name.lower().replace(" ", "")
    if entry.get("type") == "local" or lowered.startswith("exo"):
        return "exo"
    if "openrouter" in lowered or host.endswith("openrouter.ai"):
        return "openrouter"
    if "huggingface" in lowered or host.endswith("huggingface.co"):
        return "huggingface"
    return "openai"


def _key_of(entry: dict[str, Any], key_file: Path, provider: ImportedProvider) -> None:
    from exobridge.core.keys_file import clean_key

    plain = entry.get("api_key")
    encrypted = entry.get("api_key_encrypted")
    candidate, origin = None, None
    if isinstance(plain, str) and plain.strip():
        candidate, origin = plain, "plaintext"
    elif isinstance(encrypted, str) and encrypted.strip():
        candidate, problem = decrypt_key(encrypted, key_file)
        origin = "decrypted"
        if candidate is None:
            provider.key_problem = problem
            return
    if candidate is None:
        return
    try:
        provider.key = clean_key(candidate)
        provider.key_origin = origin
    except ValueError as exc:
        provider.key_problem = f"the legacy key is unusable ({exc})"


def read_legacy(path: Path, key_file: Path | None = None) -> LegacyImport:
    """Parse and map the legacy file. Raises LegacyImportError (one line) for a missing or malformed file."""
    key_file = default_key_path() if key_file is None else key_file
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("providers"), list):
        raise LegacyImportError(f'{path}: not a token manager config (expected {{"providers": [...]}} at the top)')
    result = LegacyImport(source=path, providers=[])
    result.budget = _budget_of(data)
    mapped = {origin.split(".")[0] for _, origin in result.budget.values()}
    result.not_imported = [key for key in data if key not in USED_TOP_LEVEL and key not in mapped]

    candidates: list[tuple[tuple[int, int, int], ImportedProvider]] = []
    taken: set[str] = set()
    for index, entry in enumerate(data["providers"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise LegacyImportError(f'{path}: providers[{index}]: expected an object with a "name"')
        legacy_name = entry["name"].strip()
        base_url = entry.get("base_url")
        if isinstance(base_url, str) and not config_mod.is_http_url(base_url.strip()):
            result.skipped.append(f"{legacy_name}: base_url is not an http(s) URL: {base_url!r}")
            continue
        host = (urlsplit(base_url).hostname or "") if isinstance(base_url, str) else ""
        kind = _kind_of(entry, legacy_name, host)
        notes: list[str] = []
        if _is_local(kind):
            name = kind
            url = base_url if isinstance(base_url, str) and base_url.strip() else f"http://localhost:{EXO_PORT}"
            url = url.rstrip("/").removesuffix("/v1")
            if urlsplit(url).port != EXO_PORT:
                notes.append(
                    f"kept the old Exo url {url}; current Exo serves its API on port {EXO_PORT} "
                    f"(set providers.exo.url to http://localhost:{EXO_PORT} if chat cannot reach it)"
                )
        elif not isinstance(base_url, str) or not base_url.strip():
            result.skipped.append(f"{legacy_name}: no base_url")
            continue
        elif host == HF_OLD_HOST:  # the legacy file's retired Hugging Face API
            name, url = kind, HF_ROUTER_URL
            notes.append(f"the old {HF_OLD_HOST} API is retired; using the router {HF_ROUTER_URL}")
        else:
            # A cloud kind exobridge has a built-in provider for takes that provider's name.
            name = kind if kind in config_mod.DEFAULTS["providers"] else slugify(legacy_name)
            url, note = _api_url(base_url, entry.get("chat_endpoint"))
            if note:
                notes.append(note)
        if not name:
            result.skipped.append(f"{legacy_name}: its name gives no usable provider name")
            continue
        base, n = name, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        if not config_mod.is_http_url(url):
            result.skipped.append(f"{legacy_name}: base_url is not an http(s) URL: {url!r}")
            continue
        taken.add(name)

        status = _status(entry.get("status"))
        enabled = status != "disabled"
        if status in ("exhausted", "error"):
            notes.append(f"its old status was {status!r}; imported enabled")
        elif status is not None and status not in STATUSES:
            notes.append(f"unknown old status {entry.get('status')!r}; imported enabled")
        key_env = env_name_for(name) if _takes_key_env(kind) else None
        provider = ImportedProvider(legacy_name, name, kind, url, 0, enabled, key_env, notes=notes)
        provider.not_imported = [key for key in entry if key not in USED_FIELDS]
        _key_of(entry, key_file, provider)

        priority = entry.get("priority")
        if isinstance(priority, int) and not isinstance(priority, bool):
            order = (0, priority, index)
        else:  # no priority: after the ones that have one, in list order, Exo first
            order = (1, 0 if _is_local(kind) else 1, index)
        candidates.append((order, provider))

    # The local provider keeps its place first (priority 0); every other import comes after it, in the
    # legacy order, so an imported cloud never ties with (or sorts before) Exo.
    ordered = [provider for _, provider in sorted(candidates, key=lambda item: item[0])]
    local = [p for p in ordered if _is_local(p.kind)]
    for rank, provider in enumerate([*local, *(p for p in ordered if not _is_local(p.kind))]):
        provider.rank = rank if local else rank + 1
        result.providers.append(provider)
    return result


BUDGET_FIELDS = {"max_daily_cost": "daily_usd", "max_monthly_cost": "monthly_usd"}


def _budget_of(data: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """`billing_protection` {"enabled", "max_daily_cost", "max_monthly_cost"} -> `budget.daily_usd` /
    `monthly_usd` (only when enabled, only non-negative finite numbers); `free_models_only = true` ->
    `budget.free_only = true` (docs/history.md)."""
    import math

    found: dict[str, tuple[Any, str]] = {}
    protection = data.get("billing_protection")
    if isinstance(protection, dict) and protection.get("enabled") is True:
        for legacy, key in BUDGET_FIELDS.items():
            value = protection.get(legacy)
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
                found[key] = (float(value), f"billing_protection.{legacy}")
    if data.get("free_models_only") is True:
        found["free_only"] = (True, "free_models_only")
    return found


def env_name_for(name: str) -> str:
    """The key variable for an imported provider: `together-ai` → `TOGETHER_AI_API_KEY`, `01-ai` →
    `_01_AI_API_KEY` (a variable name may not start with a digit). Always matches config_schema.ENV_NAME."""
    from exobridge.core.config_schema import ENV_NAME

    stem = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "PROVIDER"
    if stem[0].isdigit():
        stem = f"_{stem}"
    variable = f"{stem}_API_KEY"
    assert ENV_NAME.match(variable), variable
    return variable


def _is_local(kind: str) -> bool:
    """The legacy "local" provider maps to this kind (a free kind: it runs on the user's own machines)."""
    from exobridge.core import providers

    return bool(providers.kind_class(kind).free)


def _takes_key_env(kind: str) -> bool:
    """An imported endpoint of a kind with no key variable of its own gets one named after it."""
    from exobridge.core import providers

    cls = providers.kind_class(kind)
    return cls.default_key_env is None and not cls.free


@dataclass
class Change:
    dotted: str
    value: Any
    action: str  # "set" | "kept"
    legacy_value: Any = None
    origin: str | None = None  # the legacy setting it comes from, when not a provider field

    def line(self) -> str:
        if self.action == "set":
            origin = f" (from the legacy {self.origin})" if self.origin else ""
            return f"+ {self.dotted} = {_toml_value(self.value)}{origin}"
        legacy = _toml_value(self.legacy_value)
        return f"= kept {self.dotted} = {_toml_value(self.value)} (the legacy file says {legacy})"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _desired(provider: ImportedProvider, exists: bool) -> list[tuple[str, Any]]:
    wanted: list[tuple[str, Any]] = []
    if not exists:
        wanted.append(("kind", provider.kind))
    wanted += [("url", provider.url), ("priority", provider.rank), ("enabled", provider.enabled)]
    if provider.key_env and not exists:
        wanted.append(("key_env", provider.key_env))
    return wanted


def apply(plan: LegacyImport, doc: tomlkit.TOMLDocument, path: Path) -> list[Change]:
    """Merge the plan's providers into `doc` (in place) and say what changed or was kept."""
    import tomlkit

    current = config_mod.build(doc.unwrap(), path, env={})
    if "providers" not in doc:
        doc["providers"] = tomlkit.table(is_super_table=True)
    providers = doc["providers"]
    changes: list[Change] = []
    for provider in plan.providers:
        existing = current.providers.get(provider.name)
        explicit = providers.get(provider.name)
        created = False
        for key, value in _desired(provider, existing is not None):
            dotted = f"providers.{provider.name}.{key}"
            written = None
            if explicit is not None:
                if key in explicit:
                    written = explicit[key].unwrap() if hasattr(explicit[key], "unwrap") else explicit[key]
                elif key == "url" and "urls" in explicit:
                    written = explicit["urls"].unwrap()
            if written is not None:
                if written != value and not (key == "url" and written == [value]):
                    changes.append(Change(dotted, written, "kept", value))
                continue
            if existing is not None and _effective(existing, key) == value:
                continue
            if existing is None and key == "enabled" and value is True:
                continue  # a new provider is enabled unless it says otherwise
            if explicit is None:
                explicit = tomlkit.table()
                providers[provider.name] = explicit
                explicit = providers[provider.name]
                created = True
            explicit[key] = value
            changes.append(Change(dotted, value, "set"))
        if created:  # a blank line before whatever table follows, as `providers add` leaves
            explicit.add(tomlkit.nl())
    if not providers:
        del doc["providers"]
    changes += _apply_budget(plan, doc)
    return changes


def _apply_budget(plan: LegacyImport, doc: tomlkit.TOMLDocument) -> list[Change]:
    """Merge the mapped `[budget]` keys; a key the file already sets is kept."""
    import tomlkit

    changes: list[Change] = []
    if not plan.budget:
        return changes
    table = doc.get("budget")
    for key, (value, origin) in plan.budget.items():
        dotted = f"budget.{key}"
        if table is not None and key in table:
            written = table[key].unwrap() if hasattr(table[key], "unwrap") else table[key]
            if written != value:
                changes.append(Change(dotted, written, "kept", value, origin))
            continue
        if table is None:
            doc["budget"] = tomlkit.table()
            table = doc["budget"]
        table[key] = value
        changes.append(Change(dotted, value, "set", origin=origin))
    return changes


def _effective(provider: config_mod.ProviderConfig, key: str) -> Any:
    if key == "url":
        return provider.urls[0] if len(provider.urls) == 1 else provider.urls
    return getattr(provider, key)
