"""Provider kinds are plug-ins: the registry, what each built-in kind says about itself, and a kind defined
in this file (a class plus one registration) that the router handles like any other."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exobridge.core import providers
from exobridge.core.config import ProviderConfig
from exobridge.core.model_targets import Target
from exobridge.core.providers import ProviderKind, StatusProbe, Timeouts
from exobridge.core.routing import ChatRequest, Router
from tests.loopback import Exchange, chunk
from tests.test_routing import make_config

ROOT = Path(__file__).resolve().parent.parent


def test_the_built_in_kinds_are_registered_in_order() -> None:
    assert providers.kind_names()[:4] == ("exo", "openrouter", "huggingface", "openai")


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(providers.UnknownKind) as caught:
        providers.kind_class("mistrall")
    assert str(caught.value) == "unknown kind 'mistrall' (one of exo, openrouter, huggingface, openai)"
    assert isinstance(caught.value, KeyError)


@pytest.mark.parametrize(
    ("name", "url", "timeouts", "key_env", "needs_key", "free", "probe"),
    [
        ("exo", "http://localhost:52415", (1.0, 60.0, 30.0), None, False, True, StatusProbe.EXO_CLUSTER),
        (
            "openrouter",
            "https://openrouter.ai/api/v1",
            (5.0, 60.0, 60.0),
            "OPENROUTER_API_KEY",
            True,
            False,
            "key_info",
        ),
        ("huggingface", "https://router.huggingface.co/v1", (5.0, 60.0, 60.0), "HF_TOKEN", True, False, "models"),
        ("openai", None, (5.0, 60.0, 60.0), None, False, False, "models"),
    ],
)
def test_each_kind_carries_its_defaults(
    name: str,
    url: str | None,
    timeouts: tuple[float, ...],
    key_env: str | None,
    needs_key: bool,
    free: bool,
    probe: str,
) -> None:
    kind = providers.kind_class(name)
    assert kind.name == name
    assert kind.default_url == url
    assert kind.default_timeouts == Timeouts(*timeouts)
    assert kind.default_key_env == key_env
    assert kind.needs_key is needs_key
    assert kind.free is free
    assert kind.status_probe == probe
    assert kind.url_env == ("EXOBRIDGE_EXO_URL" if name == "exo" else None)
    assert kind.cost({"cost": 0.5}) == (0.0 if free else 0.5 if name == "openrouter" else None)


def test_hugging_face_also_reads_the_old_token_variable_only_for_its_default() -> None:
    hf = providers.kind_class("huggingface")
    assert hf.key_envs_for("HF_TOKEN") == ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]
    assert hf.key_envs_for("MY_HF") == ["MY_HF"]
    assert providers.kind_class("openai").key_envs_for(None) == []


def test_model_lists_parse_by_kind() -> None:
    data = {
        "data": [
            {"id": "a", "pricing": {"prompt": "0", "completion": "0"}, "context_length": 8192},
            {"id": "b", "pricing": {"prompt": "0.1", "completion": "0"}},
            {"id": "c", "hugging_face_id": "org/C"},
            {"no": "id"},
        ]
    }
    assert providers.kind_class("openrouter").parse_models(data) == [
        {"id": "a", "free": True, "context_length": 8192},
        {"id": "b", "free": False},
        {"id": "c", "hugging_face_id": "org/C"},
    ]
    exo = providers.kind_class("exo").parse_models(data)
    assert exo is not None and all(entry["free"] for entry in exo)
    assert providers.kind_class("exo").models_url("http://n") == "http://n/v1/models"
    assert providers.kind_class("openai").models_url("http://n") == "http://n/models"
    assert providers.kind_class("openai").parse_models({"object": "error"}) is None


def test_register_refuses_what_is_not_a_kind() -> None:
    with pytest.raises(TypeError):
        providers.register(object)  # type: ignore[arg-type]

    class Nameless(ProviderKind):
        name = ""

    with pytest.raises(ValueError):
        providers.register(Nameless)


# --- a kind defined here ----------------------------------------------------------------------------------


class Echo(ProviderKind):
    """A made-up provider: its own chat path, a header, and a cost of one cent per reply."""

    name = "echo-test"
    label = "Echo"
    default_url = "http://127.0.0.1:9"
    default_key_env = "ECHO_TEST_KEY"
    needs_key = True
    chat_path = "/api/chat"

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "X-Echo": "yes"}

    @classmethod
    def cost(cls, usage: dict[str, Any] | None) -> float | None:
        return 0.01


@pytest.fixture
def echo_kind() -> Iterator[type[Echo]]:
    providers.register(Echo)
    yield Echo
    providers.unregister(Echo.name)


def test_a_kind_defined_in_a_test_routes_a_chat(echo_kind, server) -> None:
    served = server()

    @served.route("POST", "/api/chat")
    def _(ex: Exchange) -> None:
        ex.start_stream()
        ex.event(chunk("echoed"))
        ex.event("[DONE]")
        ex.end()

    assert "echo-test" in providers.kind_names()
    provider = ProviderConfig(name="mine", kind="echo-test", urls=[served.url], priority=0, key_env="ECHO_TEST_KEY")
    cfg = make_config({})
    cfg.providers["mine"] = provider
    result = Router(cfg, cli_keys={"mine": "k-123456789012"}).run(
        ChatRequest([{"role": "user", "content": "x"}], "m"), [Target(provider, "m")]
    )
    assert (result.exit_code, result.text, result.cost) == (0, "echoed", 0.01)
    sent = served.requests[0]
    assert sent.headers["x-echo"] == "yes"
    assert sent.headers["authorization"] == "Bearer k-123456789012"


def test_unregistering_restores_the_unknown_kind(echo_kind) -> None:
    providers.unregister("echo-test")
    with pytest.raises(providers.UnknownKind):
        providers.kind_class("echo-test")


# --- nothing outside core/providers branches on a kind name ---------------------------------------------------


def _kind_name_comparisons(path: Path) -> list[str]:
    """`x.kind == "exo"`, `kind in ("openrouter", "huggingface")` … anywhere in one module."""
    names = set(providers.kind_names())
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        constants: set[object] = set()
        for part in (node.left, *node.comparators):
            if isinstance(part, ast.Constant):
                constants.add(part.value)
            elif isinstance(part, ast.Tuple | ast.List | ast.Set):
                constants |= {e.value for e in part.elts if isinstance(e, ast.Constant)}
        if constants & names and "kind" in ast.unparse(node):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_outside_the_provider_package_branches_on_a_kind_name() -> None:
    """Issue 8 point 2: what differs between kinds is asked of the kind class, never `if kind == "exo"`."""
    package = ROOT / "exobridge"
    offenders = [
        found
        for path in sorted(package.rglob("*.py"))
        if (package / "core" / "providers") not in path.parents
        for found in _kind_name_comparisons(path)
    ]
    assert offenders == []


def test_the_provider_package_imports_neither_config_nor_routing_nor_httpx_at_module_level() -> None:
    for path in (ROOT / "exobridge" / "core" / "providers").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                for name in names:
                    assert name not in ("exobridge.core.config", "exobridge.core.routing", "httpx"), (path, name)
