"""`providers add --check` (and `setup`): one read of a planned provider's model list, and what to write from it.

The read is `model_lists.fetch_list`, the one way to ask a provider for its models: through core/http.py
like every other request (the same proxies as `chat`, no redirects, a wall-clock deadline no trickle of bytes
can extend, the model-list byte cap); its failure text is redacted (the key and configured header secrets).

From the ids it read, `plan_models` decides what makes the endpoint answer on the first try
(docs/providers.md): its own default `model` when it serves exactly one, and a `models."NAME".PROVIDER`
entry for every logical name one of its ids stands for (core/model_names.py) that the built-in table has no
id for on this provider. `apply_models` writes that plan into the config document.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exobridge.core.config import Config, ProviderConfig

if TYPE_CHECKING:
    import tomlkit

CHECK_DEADLINE = 10.0  # seconds for the whole GET (connect, headers, body)


@dataclass(frozen=True)
class Probe:
    ok: bool
    url: str
    detail: str  # "12 models" or the failure reason
    models: list[str] | None = None


def probe_models(provider: ProviderConfig, key: str | None, *, deadline_s: float | None = None) -> Probe:
    """One GET of the provider's model list (no completion): does the endpoint answer like an OpenAI API?

    `errors.ProxyError` (exit 4) propagates for a broken proxy setting, as in every command."""
    from exobridge.core import model_lists, providers
    from exobridge.core.errors import Failure

    url = providers.kind_class(provider.kind).models_url(provider.url)
    seconds = CHECK_DEADLINE if deadline_s is None else deadline_s
    try:
        entries = model_lists.fetch_list(provider, provider.url, key, seconds=seconds)
    except Failure as failure:
        shown = f"HTTP {failure.status}: " if failure.status and str(failure.status) not in failure.reason else ""
        return Probe(False, url, f"{shown}{failure.reason}")
    ids = [str(entry["id"]) for entry in entries]
    if not ids:
        return Probe(True, url, "answered with an empty model list", [])
    return Probe(True, url, f"{len(ids)} model{'s' if len(ids) != 1 else ''}", ids)


@dataclass
class ModelPlan:
    """What to write for a provider from the ids it serves."""

    provider: str
    served: list[str]
    model: str | None = None  # its own default model (`providers.NAME.model`)
    mappings: dict[str, str] = field(default_factory=dict)  # logical name -> served id
    kept: dict[str, str] = field(default_factory=dict)  # logical name -> id the config already has

    def settings(self) -> list[tuple[str, str]]:
        """(dotted key, value) of each write, in the order they are printed."""
        from exobridge.core.config_keys import format_key

        rows = [(format_key(("providers", self.provider, "model")), self.model)] if self.model else []
        rows += [(format_key(("models", name, self.provider)), served) for name, served in self.mappings.items()]
        return rows


def builtin_columns(provider: ProviderConfig) -> tuple[str, ...]:
    """The built-in table columns a provider reads (its name, its kind's column and that column's twins)."""
    from exobridge.core.model_table import TWIN_COLUMNS

    return (provider.name, provider.kind, *TWIN_COLUMNS.get(provider.kind, ()))


def plan_models(
    provider: ProviderConfig, served: Iterable[str], config: Config | None = None, *, model: str | None = None
) -> ModelPlan:
    """The default model and `models.*` entries that let `provider` answer the logical names it serves.

    `model` (e.g. `--model`) wins; else the one id when exactly one is served. A logical name the built-in
    table already has an id for on this provider, or that the config already maps for it, is left alone."""
    from exobridge.core import model_names
    from exobridge.core.model_table import BUILTIN_MODELS

    ids = list(dict.fromkeys(served))
    plan = ModelPlan(provider.name, ids)
    plan.model = model or (ids[0] if len(ids) == 1 else None)
    user = config.models if config is not None else {}
    columns = builtin_columns(provider)
    for name, served_id in model_names.match_served(ids).items():
        if any(BUILTIN_MODELS.get(name, {}).get(column) for column in columns):
            continue
        if provider.name in user.get(name, {}):
            plan.kept[name] = user[name][provider.name]
            continue
        plan.mappings[name] = served_id
    return plan


def apply_models(doc: tomlkit.TOMLDocument, plan: ModelPlan) -> None:
    """Write `plan` into the config document (inside `config_file.edit_config`)."""
    from exobridge.core.config_document import set_in_document
    from exobridge.core.config_schema import PROVIDER_FIELDS, check

    if plan.model:
        set_in_document(doc, ("providers", plan.provider, "model"), check(PROVIDER_FIELDS["model"], plan.model))
    for name, served_id in plan.mappings.items():
        set_in_document(doc, ("models", name, plan.provider), served_id)


def set_model_command(provider: str, example: Any = "<id>") -> str:
    """The exact command that gives `provider` a default model."""
    import shlex

    return f"exobridge config set providers.{provider}.model {shlex.quote(str(example))}"
