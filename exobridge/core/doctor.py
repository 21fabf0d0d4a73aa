"""`exobridge doctor` as pure checks: each finds one kind of trouble and says the one-line fix.

Checks run concurrently (network ones have their own short timeouts, so a dead network costs about one connect
timeout, not the sum) and are reported in a fixed order, grouped by section. A check that crashes is reported
as a failed check with its error. Nothing here spends money: probes only GET health, state, key and list routes.

`EXOBRIDGE_DOCTOR_EXO_PORTS` (comma-separated ports) replaces the ports tried when Exo does not answer at its
configured url (default: 52415 and 8000, minus the configured one). It is a knob for tests and odd setups.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from exobridge import __version__
from exobridge.core import keys as keys_mod
from exobridge.core import paths
from exobridge.core.config import Config, ConfigError, ProviderConfig

OK, WARN, FAIL = "ok", "warn", "fail"
EXO_PORTS = (52415, 8000)
EXO_PORTS_ENV = "EXOBRIDGE_DOCTOR_EXO_PORTS"
PROBE_READ_TIMEOUT = 3.0
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@dataclass
class CheckResult:
    id: str
    section: str
    status: str  # ok | warn | fail
    detail: str
    fix: str | None = None
    ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "section": self.section,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "ms": self.ms,
        }


@dataclass
class Job:
    """Work that yields one or more results. `id` and `section` name the failure if the job crashes."""

    id: str
    section: str
    run: Callable[[], list[CheckResult]]


@dataclass
class Report:
    checks: list[CheckResult]
    strict: bool = False

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)

    @property
    def failed(self) -> bool:
        return self.count(FAIL) > 0 or (self.strict and self.count(WARN) > 0)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "checks": [c.to_json() for c in self.checks],
            "summary": {
                "ok": self.count(OK),
                "warn": self.count(WARN),
                "fail": self.count(FAIL),
                "strict": self.strict,
                "exit_code": self.exit_code,
            },
        }


# --- running ---------------------------------------------------------------------------------------------


def run_jobs(jobs: list[Job], deadline: float | None = None) -> list[CheckResult]:
    """Run every job in its own daemon thread; results in job order. A crash or overrun becomes a failure.

    Daemon threads: a check stuck past `deadline` seconds (e.g. in DNS) is reported and left behind, it never
    holds up the exit.
    """
    slots: list[list[CheckResult] | None] = [None] * len(jobs)
    timings: list[int] = [0] * len(jobs)
    done = [threading.Event() for _ in jobs]

    def work(index: int, job: Job) -> None:
        started = time.monotonic()
        try:
            results = job.run()
        except Exception as exc:  # a broken check must not break the doctor
            results = [
                CheckResult(
                    job.id,
                    job.section,
                    FAIL,
                    f"the check crashed: {type(exc).__name__}: {exc}",
                    "a bug in exobridge or an odd setting it names: fix the setting, or report the error",
                )
            ]
        timings[index] = int((time.monotonic() - started) * 1000)
        for result in results:
            if not result.ms:
                result.ms = timings[index]
        slots[index] = results
        done[index].set()

    for index, job in enumerate(jobs):
        threading.Thread(target=work, args=(index, job), daemon=True, name=f"doctor-{job.id}").start()
    started = time.monotonic()
    out: list[CheckResult] = []
    for index, job in enumerate(jobs):
        left = None if deadline is None else max(0.0, deadline - (time.monotonic() - started))
        if not done[index].wait(left):
            out.append(
                CheckResult(
                    job.id,
                    job.section,
                    FAIL,
                    f"the check did not finish within {deadline:g} s",
                    "check DNS and the network (and any *_PROXY variable), then run exobridge doctor again",
                )
            )
            continue
        out.extend(slots[index] or [])
    return out


# --- environment ---------------------------------------------------------------------------------------


def check_python() -> list[CheckResult]:
    version = ".".join(str(v) for v in sys.version_info[:3])
    return [CheckResult("env.python", "Environment", OK, f"Python {version} ({sys.executable})")]


def check_version() -> list[CheckResult]:
    return [CheckResult("env.version", "Environment", OK, f"exobridge {__version__}")]


def check_paths() -> list[CheckResult]:
    config_path, keys_path, cache_dir = paths.config_path(), paths.keys_path(), paths.cache_dir()
    results = [
        CheckResult(
            "env.config_path",
            "Environment",
            OK,
            f"config {config_path}" + ("" if config_path.exists() else " (not created yet: defaults apply)"),
        ),
        CheckResult(
            "env.keys_path",
            "Environment",
            OK,
            f"keys file {keys_path}" + ("" if keys_path.exists() else " (none)"),
        ),
    ]
    probe = cache_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if os.access(probe, os.W_OK):
        results.append(CheckResult("env.cache_dir", "Environment", OK, f"cache {cache_dir}"))
    else:
        results.append(
            CheckResult(
                "env.cache_dir",
                "Environment",
                WARN,
                f"cache {cache_dir} is not writable (model lists and cooldowns are not remembered)",
                f"set EXOBRIDGE_CACHE_DIR to a writable directory, or fix the owner of {probe}",
            )
        )
    return results


def file_mode_check(check_id: str, label: str, path: Path, holds_keys: bool) -> CheckResult:
    """A file holding keys that group/others can read is a failure; any other file is fine either way."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return CheckResult(check_id, "Environment", OK, f"{label}: no file")
    except OSError as exc:
        return CheckResult(
            check_id,
            "Environment",
            WARN,
            f"{label} {path}: cannot stat ({exc.strerror})",
            f"ls -ld {path.parent}; fix its owner or mode",
        )
    if not mode & 0o077:
        return CheckResult(check_id, "Environment", OK, f"{label} {path} is private (mode {mode:04o})")
    if not holds_keys:
        return CheckResult(check_id, "Environment", OK, f"{label} {path} (mode {mode:04o}, holds no keys)")
    return CheckResult(
        check_id,
        "Environment",
        FAIL,
        f"{label} {path} holds secrets and is readable by group/others (mode {mode:04o})",
        f"chmod 600 {path}",
    )


def check_permissions(loaded: Config | ConfigError) -> list[CheckResult]:
    """The keys file always holds keys; the config does when a provider has `headers` (e.g. Authorization)."""
    config_holds_keys = isinstance(loaded, Config) and any(p.headers for p in loaded.providers.values())
    return [
        file_mode_check("env.config_mode", "config", paths.config_path(), holds_keys=config_holds_keys),
        file_mode_check("env.keys_mode", "keys file", paths.keys_path(), holds_keys=True),
    ]


# --- config (static) -------------------------------------------------------------------------------------


def check_parse(loaded: Config | ConfigError) -> list[CheckResult]:
    if isinstance(loaded, ConfigError):
        where = f" ({loaded.where})" if loaded.where else ""
        return [
            CheckResult(
                "config.parse",
                "Config",
                FAIL,
                f"config does not load: {loaded}",
                f"fix{where} in {loaded.source}, or move the file away to start from the defaults",
            )
        ]
    what = f"{loaded.path} parses" if loaded.file_exists else "no config file: built-in defaults"
    return [CheckResult("config.parse", "Config", OK, what)]


def check_unknown_keys(config: Config) -> list[CheckResult]:
    if not config.unknown_keys:
        return [CheckResult("config.unknown_keys", "Config", OK, "no unknown keys")]
    names = ", ".join(config.unknown_keys)
    return [
        CheckResult(
            "config.unknown_keys",
            "Config",
            WARN,
            f"unknown keys are ignored: {names} (a typo?)",
            f"remove or rename {config.unknown_keys[0]} in {config.path}",
        )
    ]


def check_providers_enabled(config: Config) -> list[CheckResult]:
    enabled = config.ordered()
    if not enabled:
        first = next(iter(config.providers), "exo")
        return [
            CheckResult(
                "config.providers",
                "Config",
                FAIL,
                "no provider is enabled: every chat would fail",
                f"exobridge config set providers.{first}.enabled true",
            )
        ]
    order = " → ".join(p.name for p in enabled)
    return [CheckResult("config.providers", "Config", OK, f"routing order: {order}")]


def check_priorities(config: Config) -> list[CheckResult]:
    seen: dict[int, list[str]] = {}
    for provider in config.ordered():
        seen.setdefault(provider.priority, []).append(provider.name)
    clashes = {prio: names for prio, names in seen.items() if len(names) > 1}
    if not clashes:
        return [CheckResult("config.priorities", "Config", OK, "every enabled provider has its own priority")]
    prio, names = next(iter(sorted(clashes.items())))
    taken = {p.priority for p in config.providers.values()}
    free = next(n for n in range(prio + 1, prio + 100) if n not in taken)
    return [
        CheckResult(
            "config.priorities",
            "Config",
            WARN,
            f"{' and '.join(names)} share priority {prio}: the order between them is by name",
            f"exobridge config set providers.{names[-1]}.priority {free}",
        )
    ]


def default_targets(config: Config) -> list[Any]:
    from exobridge.core import model_map

    return [t for t in model_map.targets(config.default_model, config) if t.provider.enabled]


# --- network: proxies ------------------------------------------------------------------------------------


def _env(env: dict[str, str], name: str) -> str:
    return env.get(name) or env.get(name.lower()) or ""


def no_proxy_covers(host: str, no_proxy: str) -> bool:
    """Whether a NO_PROXY value exempts `host` (entries: `*`, names, `.suffix`, IPs; ports ignored)."""
    host = host.lower().strip("[]")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry = entry.split("://")[-1]
        if entry.count(":") == 1:
            entry = entry.split(":")[0]
        entry = entry.strip("[]")
        if entry.startswith("*."):
            entry = entry[1:]
        if host == entry.lstrip(".") or (entry.startswith(".") and host.endswith(entry)):
            return True
        if not entry.startswith(".") and host.endswith("." + entry):
            return True
        if "/" in entry:
            import ipaddress

            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
    return False


def check_proxy(config: Config, env: dict[str, str] | None = None) -> list[CheckResult]:
    env = dict(os.environ) if env is None else env
    proxies = [(name, _env(env, name)) for name in PROXY_VARS if _env(env, name)]
    if not proxies:
        return [CheckResult("network.proxy", "Network", OK, "no proxy set in the environment")]
    no_proxy = _env(env, "NO_PROXY")
    hosts: list[str] = []
    for provider in config.ordered():
        if provider.kind != "exo":
            continue
        for url in provider.urls:
            host = urlsplit(url).hostname or ""
            if host and host not in hosts:
                hosts.append(host)
    exposed = [h for h in hosts if not no_proxy_covers(h, no_proxy)]
    names = ", ".join(name for name, _ in proxies)
    if not exposed:
        covered = f" ({', '.join(hosts)} exempt by NO_PROXY)" if hosts else ""
        return [CheckResult("network.proxy", "Network", OK, f"{names} set{covered}")]
    wanted = ",".join(dict.fromkeys(["localhost", "127.0.0.1", *exposed]))
    current = f"{no_proxy}," if no_proxy else ""
    return [
        CheckResult(
            "network.proxy",
            "Network",
            FAIL,
            f"{names} set and NO_PROXY does not cover {', '.join(exposed)}: Exo requests would go through the proxy",
            f'export NO_PROXY="{current}{wanted}"',
        )
    ]


# --- providers (network) -------------------------------------------------------------------------------


def exo_candidate_ports(configured: int, env: dict[str, str] | None = None) -> list[int]:
    env = dict(os.environ) if env is None else env
    raw = env.get(EXO_PORTS_ENV, "").strip()
    ports = list(EXO_PORTS)
    if raw:
        ports = [int(p) for p in raw.replace(" ", "").split(",") if p.isdigit()]
    return [p for p in dict.fromkeys(ports) if p != configured]


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, "", "")).rstrip("/")


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass
class ProviderFacts:
    """What the provider checks learnt, for the default-model verdict."""

    name: str
    serves_default: bool | None = None  # None: unknown (list not read)
    usable: bool = True
    why_not: str | None = None
    fix: str | None = None


@dataclass
class Doctor:
    config: Config
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    read_timeout: float = PROBE_READ_TIMEOUT
    facts: dict[str, ProviderFacts] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _remember(self, facts: ProviderFacts) -> None:
        with self._lock:
            self.facts[facts.name] = facts

    def _probe(self, provider: ProviderConfig, url: str, key: keys_mod.ResolvedKey) -> Any:
        from exobridge.core import probes

        return probes.probe_provider(provider, url, key, read_timeout=self.read_timeout)

    # --- Exo ------------------------------------------------------------------------------------------
    def check_exo(self, provider: ProviderConfig) -> list[CheckResult]:
        from concurrent.futures import ThreadPoolExecutor

        section = f"Provider {provider.name}"
        key = keys_mod.ResolvedKey(None, "not needed")
        alternates: list[tuple[str, str]] = []
        for url in provider.urls:
            for port in exo_candidate_ports(_url_port(url), self.env):
                alternates.append((url, with_port(url, port)))
        jobs = [(url, url) for url in provider.urls] + alternates
        # The configured nodes and the alternates are probed at once: a dead Exo costs one connect timeout.
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            probed = list(pool.map(lambda job: self._probe(replace(provider, urls=[job[1]]), job[1], key), jobs))
        by_url = {job[1]: result for job, result in zip(jobs, probed, strict=True)}
        results: list[CheckResult] = []
        answering = []
        for url in provider.urls:
            result = by_url[url]
            if result.reachable and result.api_line:
                answering.append(result)
                nodes = f", {result.nodes} node(s)" if result.nodes else ""
                results.append(
                    CheckResult(
                        f"provider.{provider.name}.reach",
                        section,
                        OK,
                        f"Exo {result.api_line} answers at {url} in {result.latency_ms} ms{nodes}",
                    )
                )
                continue
            moved = next(
                (by_url[alt] for base, alt in alternates if base == url and by_url[alt].api_line),
                None,
            )
            if moved is not None:
                results.append(
                    CheckResult(
                        f"provider.{provider.name}.reach",
                        section,
                        FAIL,
                        f"nothing usable at {url} ({result.problem}), but Exo {moved.api_line} answers at {moved.url}",
                        self._url_fix(provider, moved.url),
                    )
                )
                continue
            reason = result.problem or "no answer"
            fix = f"start Exo (run `exo`), or set the url: exobridge config set providers.{provider.name}.url URL"
            if result.reachable:
                fix = f"check that {url} is an Exo API, or exobridge config set providers.{provider.name}.url URL"
            results.append(CheckResult(f"provider.{provider.name}.reach", section, FAIL, f"{url}: {reason}", fix))
        model = self._exo_model(provider, answering, section)
        return [*results, model] if model is not None else results

    def _url_fix(self, provider: ProviderConfig, url: str) -> str:
        """Set the url where it comes from: the environment override wins over the config file."""
        if self.config.sources.get(f"providers.{provider.name}.url", "").startswith("env "):
            return f"export EXOBRIDGE_EXO_URL={url}"
        return f"exobridge config set providers.{provider.name}.url {url}"

    def _exo_model(self, provider: ProviderConfig, answering: list[Any], section: str) -> CheckResult | None:
        """Whether the default model can run on Exo. None when Exo is down (the reach check said so)."""
        from exobridge.core import model_map
        from exobridge.core.providers.exo import same_model

        check_id = f"provider.{provider.name}.model"
        wanted = self.config.default_model
        target = next((t for t in model_map.targets(wanted, self.config, only=[provider.name])), None)
        facts = ProviderFacts(provider.name)
        if target is None or target.model is None:
            facts.serves_default, facts.usable = False, False
            facts.why_not = f"{provider.name}: no id for {wanted}"
            self._remember(facts)
            return CheckResult(
                check_id,
                section,
                WARN,
                f"the model table has no {provider.name} id for the default model {wanted}",
                f'exobridge config set models."{wanted}".{provider.name} "<exo model id>"',
            )
        if not answering:
            facts.usable = False
            facts.why_not = f"{provider.name}: not reachable"
            self._remember(facts)
            return None
        ids = (target.model, *target.alternates)
        node = answering[0]
        have = [m for m in node.models if any(same_model(i, m) for i in ids)]
        if have:
            facts.serves_default = True
            self._remember(facts)
            what = "placed" if node.api_line == "v1" else "in the node's list"
            return CheckResult(check_id, section, OK, f"default model {wanted} is {what} ({have[0]})")
        facts.serves_default, facts.usable = False, False
        if node.api_line == "v1":
            placed = ", ".join(node.models[:3]) or "none"
            facts.why_not = f"{provider.name}: no instance of {wanted}"
            if node.models:
                fix = f"place {ids[-1]} in the Exo dashboard, or exobridge config set default_model {node.models[0]}"
            else:
                fix = f"place {ids[-1]} in the Exo dashboard (no model is running)"
            detail = f"no placed instance of the default model {wanted} (placed: {placed}): chats go to the cloud"
        else:
            facts.why_not = f"{provider.name}: {wanted} not in its list"
            fix = f"exobridge models --provider {provider.name}, then exobridge config set default_model <name>"
            detail = f"the default model {wanted} ({target.model}) is not in the node's model list"
        self._remember(facts)
        return CheckResult(check_id, section, WARN, detail, fix)

    # --- clouds ---------------------------------------------------------------------------------------
    def check_cloud(self, provider: ProviderConfig, key: keys_mod.ResolvedKey) -> list[CheckResult]:
        section = f"Provider {provider.name}"
        facts = ProviderFacts(provider.name)
        facts.serves_default = self._cached_serves_default(provider)
        results: list[CheckResult] = []
        envs = " or ".join(provider.key_envs)
        key_fix = f"exobridge keys set {provider.name}" + (f" (or export {provider.key_envs[0]}=…)" if envs else "")
        if key.source == "missing":
            facts.usable, facts.why_not, facts.fix = False, f"{provider.name}: no key", key_fix
            self._remember(facts)
            return [CheckResult(f"provider.{provider.name}.key", section, WARN, f"no API key ({envs} unset)", key_fix)]
        if key.source != "not needed":
            results.append(
                CheckResult(f"provider.{provider.name}.key", section, OK, f"key {key.masked} from {key.source}")
            )
        node = self._probe(provider, provider.url, key)
        if node.key_valid is False:
            facts.usable, facts.why_not, facts.fix = False, f"{provider.name}: key rejected", key_fix
            results = [
                CheckResult(
                    f"provider.{provider.name}.key",
                    section,
                    FAIL,
                    f"the key from {key.source} ({key.masked}) was rejected: {node.problem}",
                    f"replace it: {key_fix}" if key.source == "keys file" else f"replace {key.source[4:]}: {key_fix}",
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
            results.append(
                CheckResult(
                    f"provider.{provider.name}.reach",
                    section,
                    FAIL,
                    f"{provider.url}: {node.problem}",
                    f"check providers.{provider.name}.url in {self.config.path}",
                )
            )
            facts.usable, facts.why_not = False, f"{provider.name}: {node.problem}"
        else:
            results.append(
                CheckResult(
                    f"provider.{provider.name}.reach",
                    section,
                    OK,
                    f"{provider.url} answers in {node.latency_ms} ms",
                )
            )
        if provider.kind == "openrouter" and node.key_valid:
            results.append(self._credits(provider, node, key, section, facts))
        self._remember(facts)
        return results

    def _credits(self, provider: ProviderConfig, node: Any, key: Any, section: str, facts: ProviderFacts) -> Any:
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

    def _cached_serves_default(self, provider: ProviderConfig) -> bool | None:
        """From `exobridge models`' cache when it is there; doctor does not download big lists itself."""
        from exobridge.core import model_map
        from exobridge.core.cache import JsonCache
        from exobridge.core.models_catalog import CACHE_NAME, CACHE_TTL

        target = next(iter(model_map.targets(self.config.default_model, self.config, only=[provider.name])), None)
        if target is None or target.model is None:
            return False
        listed = JsonCache(CACHE_NAME).get(provider.name, CACHE_TTL)
        if not isinstance(listed, list):
            return None
        ids = {str(m.get("id", "")).lower() for m in listed if isinstance(m, dict)}
        return any(i.lower() in ids for i in (target.model, *target.alternates))

    # --- the default model, after the provider checks ----------------------------------------------------
    def check_default_model(self) -> list[CheckResult]:
        wanted = self.config.default_model
        targets = default_targets(self.config)
        with_id = [t for t in targets if t.model is not None]
        if not with_id:
            return [
                CheckResult(
                    "config.default_model",
                    "Config",
                    FAIL,
                    f"default_model {wanted} has no id for any enabled provider: no provider has it",
                    f"exobridge config set default_model <name from exobridge models>, or add "
                    f'models."{wanted}".<provider> = "<id>" to {self.config.path}',
                )
            ]
        serving, reasons = [], []
        for target in with_id:
            facts = self.facts.get(target.provider.name, ProviderFacts(target.provider.name))
            if facts.usable and facts.serves_default is not False:
                serving.append(target.provider.name)
            else:
                reasons.append(facts.why_not or f"{target.provider.name}: does not list it")
        if serving:
            return [CheckResult("config.default_model", "Config", OK, f"default_model {wanted} → {', '.join(serving)}")]
        return [
            CheckResult(
                "config.default_model",
                "Config",
                FAIL,
                f"no enabled provider can serve default_model {wanted} now ({'; '.join(reasons)})",
                "exobridge config set default_model <name from exobridge models>, or fix the provider above",
            )
        ]


SECTION_ORDER = ("Environment", "Config", "Provider", "Network")


def _section_rank(section: str) -> int:
    for index, name in enumerate(SECTION_ORDER):
        if section == name or section.startswith(name + " "):
            return index
    return len(SECTION_ORDER)


def diagnose(
    strict: bool = False,
    env: dict[str, str] | None = None,
    extra_jobs: list[Job] | None = None,
    load: Callable[[], Config] | None = None,
    read_timeout: float = PROBE_READ_TIMEOUT,
) -> Report:
    """Every check, concurrently; the report in a fixed order (Environment, Config, each Provider, Network)."""
    from exobridge.core import config as config_mod

    env = dict(os.environ) if env is None else env
    try:
        loaded: Config | ConfigError = (load or config_mod.load)()
    except ConfigError as exc:
        loaded = exc
    jobs = [
        Job("env.python", "Environment", check_python),
        Job("env.version", "Environment", check_version),
        Job("env.paths", "Environment", check_paths),
        Job("env.permissions", "Environment", lambda: check_permissions(loaded)),
        Job("config.parse", "Config", lambda: check_parse(loaded)),
    ]
    doctor: Doctor | None = None
    if isinstance(loaded, Config):
        config = loaded
        doctor = Doctor(config, env, read_timeout)
        jobs += [
            Job("config.unknown_keys", "Config", lambda: check_unknown_keys(config)),
            Job("config.providers", "Config", lambda: check_providers_enabled(config)),
            Job("config.priorities", "Config", lambda: check_priorities(config)),
        ]
        stored = keys_mod.read_keys_file()
        for provider in config.ordered():
            section = f"Provider {provider.name}"
            if provider.kind == "exo":
                jobs.append(Job(f"provider.{provider.name}.reach", section, _bind(doctor.check_exo, provider)))
            else:
                key = keys_mod.resolve(provider, env=env, stored=stored)
                jobs.append(Job(f"provider.{provider.name}.reach", section, _bind(doctor.check_cloud, provider, key)))
        jobs.append(Job("network.proxy", "Network", lambda: check_proxy(config, env)))
    jobs += extra_jobs or []
    deadline = _deadline(loaded, read_timeout)
    results = run_jobs(jobs, deadline)
    if doctor is not None:
        results += run_jobs([Job("config.default_model", "Config", doctor.check_default_model)], deadline)
    ordered = sorted(enumerate(results), key=lambda item: (_section_rank(item[1].section), item[0]))
    return Report([r for _, r in ordered], strict=strict)


def _bind(function: Callable[..., list[CheckResult]], *args: Any) -> Callable[[], list[CheckResult]]:
    return lambda: function(*args)


def _deadline(loaded: Config | ConfigError, read_timeout: float) -> float:
    """Long enough for the slowest probe (connect + a few short reads), never the sum of all of them."""
    connect = (
        max((p.connect_timeout for p in loaded.providers.values()), default=5.0) if isinstance(loaded, Config) else 5.0
    )
    return connect + 3 * read_timeout + 2.0
