"""Provider checks: each enabled provider is asked (read-only, core/provider_status) whether it answers, whether
its key is good and, where it can tell, whether it serves the default model.

How a provider is checked follows its kind's `status_probe` strategy (core/providers), never its kind's name:
- `exo_cluster`: every node of the provider is probed, and when one does not answer, the same host is tried on
  the cluster's other usual ports (`CLUSTER_PORTS`, or `EXOBRIDGE_DOCTOR_EXO_PORTS`), so a server that moved
  port gets the exact `config set` line; then whether the default model is placed (v1) or listed (legacy);
- any other: the key (missing, rejected), whether the url answers, and for `key_info` the credits left.

Each check returns its results AND its `ProviderFacts`, which the default-model check takes as its input.
All probes of one check run at once (core/parallel) within the doctor's deadline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from exobridge.core import parallel
from exobridge.core.doctor.configuration import ProviderFacts
from exobridge.core.doctor.results import FAIL, OK, WARN, CheckResult, provider_section

if TYPE_CHECKING:
    from exobridge.core.config import Config, ProviderConfig
    from exobridge.core.keys import ResolvedKey

CLUSTER_PORTS = (52415, 8000)  # where a cluster node usually listens (Exo: 52415 now, 8000 before)
EXO_PORTS = CLUSTER_PORTS
EXO_PORTS_ENV = "EXOBRIDGE_DOCTOR_EXO_PORTS"
PROBE_READ_TIMEOUT = 3.0


@dataclass
class ProviderVerdict:
    """One provider's results, and what the default-model check needs to know about it."""

    results: list[CheckResult]
    facts: ProviderFacts


@dataclass
class ProviderChecks:
    config: Config
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    read_timeout: float = PROBE_READ_TIMEOUT
    deadline: parallel.Deadline = field(default_factory=lambda: parallel.Deadline(None))

    def probe(self, provider: ProviderConfig, url: str, key: ResolvedKey | None) -> Any:
        from exobridge.core import provider_status

        return provider_status.probe_provider(provider, url, key, read_timeout=self.read_timeout)

    def check(self, provider: ProviderConfig, key: ResolvedKey) -> ProviderVerdict:
        from exobridge.core import providers

        kind = providers.kind_class(provider.kind)
        if kind.status_probe == providers.StatusProbe.EXO_CLUSTER:
            return self.check_cluster(provider, kind)
        return self.check_keyed(provider, kind, key)

    # --- clusters (status_probe exo_cluster) ---------------------------------------------------------------
    def check_cluster(self, provider: ProviderConfig, kind: Any) -> ProviderVerdict:
        section = provider_section(provider.name)
        check_id = f"provider.{provider.name}.reach"
        alternates: list[tuple[str, str]] = []
        for url in provider.urls:
            for port in cluster_candidate_ports(url_port(url), self.env):
                alternates.append((url, with_port(url, port)))
        urls = list(dict.fromkeys([*provider.urls, *(alt for _, alt in alternates)]))
        # The configured nodes and the alternates are probed at once: a dead cluster costs one connect timeout.
        outcomes = parallel.run_each(
            lambda url: self.probe(replace(provider, urls=[url]), url, None),
            urls,
            timeout=None,
            deadline=self.deadline,
            thread_prefix=f"doctor-{provider.name}",
        )
        by_url = {url: outcome.value if outcome.ok else None for url, outcome in zip(urls, outcomes, strict=True)}
        results: list[CheckResult] = []
        answering = []
        for url in provider.urls:
            result = by_url[url]
            if result is not None and result.reachable and result.api_line:
                answering.append(result)
                nodes = f", {result.nodes} node(s)" if result.nodes else ""
                detail = f"{kind.label} {result.api_line} answers at {url} in {result.latency_ms} ms{nodes}"
                results.append(CheckResult(check_id, section, OK, detail))
                continue
            moved = next(
                (by_url[alt] for base, alt in alternates if base == url and by_url[alt] and by_url[alt].api_line),
                None,
            )
            problem = (result.problem if result is not None else None) or "no answer"
            if moved is not None:
                detail = (
                    f"nothing usable at {url} ({problem}), but {kind.label} {moved.api_line} answers at {moved.url}"
                )
                fix = self.url_fix(provider, moved.url)
                command = fix if fix.startswith("exobridge ") else None
                results.append(CheckResult(check_id, section, FAIL, detail, fix, command=command))
                continue
            if result is not None and result.reachable:
                fix = (
                    f"check that {url} is a {kind.label} API, or exobridge config set providers.{provider.name}.url URL"
                )
            elif kind.unreachable_hint:
                fix = kind.unreachable_hint.format(name=provider.name)
            else:
                fix = f"start the server, or set the url: exobridge config set providers.{provider.name}.url URL"
            results.append(CheckResult(check_id, section, FAIL, f"{url}: {problem}", fix))
        model, facts = self.cluster_model(provider, kind, answering)
        return ProviderVerdict([*results, model] if model is not None else results, facts)

    def url_fix(self, provider: ProviderConfig, url: str) -> str:
        """Set the url where it comes from: an environment override wins over the config file."""
        source = self.config.sources.get(f"providers.{provider.name}.url", "")
        if source.startswith("env "):
            return f"export {source.removeprefix('env ')}={url}"
        return f"exobridge config set providers.{provider.name}.url {url}"

    def cluster_model(
        self, provider: ProviderConfig, kind: Any, answering: list[Any]
    ) -> tuple[CheckResult | None, ProviderFacts]:
        """Whether the default model can run on the cluster. No result when no node answers (reach said so)."""
        from exobridge.core import model_targets
        from exobridge.core.providers.exo import same_model

        section = provider_section(provider.name)
        check_id = f"provider.{provider.name}.model"
        wanted = self.config.default_model
        target = next(iter(model_targets.targets(wanted, self.config, only=[provider.name])), None)
        facts = ProviderFacts(provider.name)
        if target is None or target.model is None:
            facts.serves_default, facts.usable = False, False
            facts.why_not = f"{provider.name}: no id for {wanted}"
            return (
                CheckResult(
                    check_id,
                    section,
                    WARN,
                    f"the model table has no {provider.name} id for the default model {wanted}",
                    f'exobridge config set models."{wanted}".{provider.name} "<{kind.label} model id>"',
                ),
                facts,
            )
        if not answering:
            facts.usable, facts.why_not = False, f"{provider.name}: not reachable"
            return None, facts
        ids = (target.model, *target.alternates)
        node = answering[0]
        have = [m for m in node.models if any(same_model(i, m) for i in ids)]
        if have:
            facts.serves_default = True
            what = "placed" if node.api_line == "v1" else "in the node's list"
            return CheckResult(check_id, section, OK, f"default model {wanted} is {what} ({have[0]})"), facts
        facts.serves_default, facts.usable = False, False
        if node.api_line == "v1":
            placed = ", ".join(node.models[:3]) or "none"
            facts.why_not = f"{provider.name}: no instance of {wanted}"
            load = f"exobridge models load {wanted}" if kind.loads_models else None
            place = load or f"place {ids[-1]} in the {kind.label} dashboard"
            if node.models:
                fix = f"{place}, or exobridge config set default_model {node.models[0]}"
            else:
                fix = f"{place} (no model is running)"
            detail = f"no placed instance of the default model {wanted} (placed: {placed}): chats go to the cloud"
            result = CheckResult(check_id, section, WARN, detail, fix, command=load)
            return result, facts
        else:
            facts.why_not = f"{provider.name}: {wanted} not in its list"
            fix = f"exobridge models --provider {provider.name}, then exobridge config set default_model <name>"
            detail = f"the default model {wanted} ({target.model}) is not in the node's model list"
        return CheckResult(check_id, section, WARN, detail, fix), facts

    # --- keyed providers (status_probe models / key_info) ------------------------------------------------
    def check_keyed(self, provider: ProviderConfig, kind: Any, key: ResolvedKey) -> ProviderVerdict:
        from exobridge.core import providers
        from exobridge.core.keys import KeySource, missing_key_reason

        section = provider_section(provider.name)
        facts = ProviderFacts(provider.name)
        facts.serves_default = self.cached_serves_default(provider)
        results: list[CheckResult] = []
        envs = " or ".join(provider.key_envs)
        key_fix = f"exobridge keys set {provider.name}" + (f" (or export {provider.key_envs[0]}=…)" if envs else "")
        source = key.source  # as shown: "env OPENROUTER_API_KEY", "keys file"
        if key.origin is KeySource.MISSING:
            facts.usable, facts.why_not = False, f"{provider.name}: no key"
            missing = missing_key_reason(provider)  # the one wording every command uses
            return ProviderVerdict(
                [
                    CheckResult(
                        f"provider.{provider.name}.key",
                        section,
                        WARN,
                        missing,
                        key_fix,
                        command=f"exobridge keys set {provider.name}",
                    )
                ],
                facts,
            )
        if key.origin is not KeySource.NOT_NEEDED:
            results.append(CheckResult(f"provider.{provider.name}.key", section, OK, f"key {key.masked} from {source}"))
        node = self.probe(provider, provider.url, key)
        if node.key_valid is False:
            facts.usable, facts.why_not = False, f"{provider.name}: key rejected"
            where = key.env_name if key.origin is KeySource.ENV and key.env_name else "it"
            results = [
                CheckResult(
                    f"provider.{provider.name}.key",
                    section,
                    FAIL,
                    f"the key from {source} ({key.masked}) was rejected: {node.problem}",
                    f"replace {where}: {key_fix}",
                    command=f"exobridge keys set {provider.name}",
                )
            ]
        elif not node.reachable:
            facts.usable, facts.why_not = False, f"{provider.name}: unreachable"
            results.append(
                CheckResult(
                    f"provider.{provider.name}.reach",
                    section,
                    FAIL,
                    f"{provider.url}: {node.problem}",
                    "check the network (and HTTPS_PROXY), or "
                    f"exobridge config set providers.{provider.name}.enabled false",
                )
            )
        elif node.problem and not node.can_answer and node.credits_remaining is None:
            facts.usable, facts.why_not = False, f"{provider.name}: {node.problem}"
            results.append(
                CheckResult(
                    f"provider.{provider.name}.reach",
                    section,
                    FAIL,
                    f"{provider.url}: {node.problem}",
                    f"check providers.{provider.name}.url in {self.config.path}",
                )
            )
        else:
            detail = f"{provider.url} answers in {node.latency_ms} ms"
            results.append(CheckResult(f"provider.{provider.name}.reach", section, OK, detail))
        if kind.status_probe == providers.StatusProbe.KEY_INFO and node.key_valid:
            results.append(self.credits(provider, node, key, facts))
        return ProviderVerdict(results, facts)

    def credits(self, provider: ProviderConfig, node: Any, key: ResolvedKey, facts: ProviderFacts) -> CheckResult:
        section = provider_section(provider.name)
        check_id = f"provider.{provider.name}.credits"
        remaining, limit = node.credits_remaining, node.credits_limit
        if remaining is not None and remaining <= 0:
            facts.usable, facts.why_not = False, f"{provider.name}: out of credits"
            return CheckResult(
                check_id,
                section,
                FAIL,
                f"the key from {key.source} is out of credits (limit ${limit or 0:g}, remaining ${remaining:g})",
                "add credits at https://openrouter.ai/settings/credits or raise the key's limit",
            )
        if remaining is None:
            used = f" (used ${node.credits_usage:g})" if node.credits_usage is not None else ""
            return CheckResult(check_id, section, OK, f"key has no credit limit{used}")
        return CheckResult(check_id, section, OK, f"${remaining:g} of ${limit or 0:g} left on the key")

    def cached_serves_default(self, provider: ProviderConfig) -> bool | None:
        """From `exobridge models`' cache when it is there; doctor does not download big lists itself."""
        from exobridge.core import model_lists, model_targets

        target = next(iter(model_targets.targets(self.config.default_model, self.config, only=[provider.name])), None)
        if target is None or target.model is None:
            return False
        cached = model_lists.cached_lists(self.config).get(provider.name)
        if cached is None:
            return None
        ids = {str(m.get("id", "")).lower() for m in cached.models}
        return any(i.lower() in ids for i in (target.model, *target.alternates))


def cluster_candidate_ports(configured: int, env: Mapping[str, str] | None = None) -> list[int]:
    """The other ports a cluster node may listen on (`EXOBRIDGE_DOCTOR_EXO_PORTS` replaces the defaults)."""
    env = os.environ if env is None else env
    raw = env.get(EXO_PORTS_ENV, "").strip()
    ports = list(CLUSTER_PORTS)
    if raw:
        ports = [int(p) for p in raw.replace(" ", "").split(",") if p.isdigit()]
    return [p for p in dict.fromkeys(ports) if p != configured]


exo_candidate_ports = cluster_candidate_ports


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, "", "")).rstrip("/")


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)
