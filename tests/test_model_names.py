"""The matching rule from a server's own model id to a logical name (core/model_names.py), as a table."""

from __future__ import annotations

import pytest

from exobridge.core import model_names
from exobridge.core.model_table import BUILTIN_MODELS

MATCHES = [
    # Ollama tags
    ("llama3.2:3b", "llama-3.2-3b"),
    ("llama3.2:1b", "llama-3.2-1b"),
    ("llama3.1:8b", "llama-3.1-8b"),
    ("llama3.2:3b-instruct-q8_0", "llama-3.2-3b"),
    ("qwen2.5:7b", "qwen-2.5-7b"),
    ("qwen2.5:1.5b", "qwen-2.5-1.5b"),
    ("qwen2.5:14b", "qwen-2.5-14b"),
    ("qwen2.5-coder:7b", "qwen-2.5-coder-7b"),
    ("gemma2:9b", "gemma2-9b"),
    ("phi4", "phi-4"),
    ("phi4:latest", "phi-4"),
    ("mistral-nemo", "mistral-nemo"),
    # vLLM / Hugging Face ids
    ("meta-llama/Llama-3.2-3B-Instruct", "llama-3.2-3b"),
    ("meta-llama/Meta-Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("Qwen/Qwen2.5-7B-Instruct", "qwen-2.5-7b"),
    ("Qwen/Qwen2.5-7B-Instruct-AWQ", "qwen-2.5-7b"),
    ("google/gemma-2-9b-it", "gemma2-9b"),
    ("nvidia/Llama-3.1-Nemotron-70B-Instruct-HF", "nemotron-70b"),
    ("deepseek-ai/DeepSeek-R1", "deepseek-r1"),
    # llama.cpp file names, Exo v1 ids, OpenRouter ids, the logical names themselves
    ("Llama-3.2-3B-Instruct-Q4_K_M.gguf", "llama-3.2-3b"),
    ("/models/qwen2.5-14b-instruct-q5_k_m.gguf", "qwen-2.5-14b"),
    ("mlx-community/Llama-3.2-3B-Instruct-4bit", "llama-3.2-3b"),
    ("meta-llama/llama-3.2-3b-instruct", "llama-3.2-3b"),
    ("deepseek/deepseek-r1-distill-qwen-7b", "deepseek-r1-distill-qwen-7b"),
    ("llama-3.2-3b", "llama-3.2-3b"),
    ("LLAMA-3.2-3B", "llama-3.2-3b"),
]

NO_MATCH = [
    "llama3.2",  # no size: Ollama's default tag, not guessed
    "deepseek-r1:7b",  # a distill, not DeepSeek-R1
    "deepseek-r1:latest",  # Ollama's default deepseek-r1 is a distill too
    "phi4:14b",  # a size the table's name does not carry
    "llama3.2:11b",  # a size the table does not have
    "mistral",
    "gpt-4o",
    "",
    "default",
]


@pytest.mark.parametrize(("served", "logical"), MATCHES)
def test_served_ids_that_match_a_logical_name(served: str, logical: str) -> None:
    assert model_names.logical_name(served) == logical


@pytest.mark.parametrize("served", NO_MATCH)
def test_served_ids_that_match_nothing(served: str) -> None:
    assert model_names.logical_name(served) is None


def test_every_built_in_name_and_id_matches_its_own_row_and_no_other() -> None:
    for logical, ids in BUILTIN_MODELS.items():
        for model_id in (*ids.values(), *(() if logical in model_names.EXACT_ONLY else (logical,))):
            assert model_names.logical_name(model_id) == logical, model_id
    collisions = {key: names for key, names in model_names.key_index(BUILTIN_MODELS).items() if len(names) > 1}
    assert collisions == {}


def test_match_served_keeps_the_first_id_per_name_and_skips_the_rest() -> None:
    served = ["llama3.2:3b", "llama3.2:3b-instruct-q8_0", "qwen2.5:7b", "nomic-embed-text", "llama3.2"]
    assert model_names.match_served(served) == {"llama-3.2-3b": "llama3.2:3b", "qwen-2.5-7b": "qwen2.5:7b"}


def test_an_id_that_two_names_share_is_not_guessed() -> None:
    table = {"a-1b": {"x": "org/Model-1B"}, "b-1b": {"y": "model-1b"}}
    assert model_names.logical_name("model:1b", table) is None
    assert model_names.match_served(["model:1b"], table) == {}


def test_a_providers_own_model_is_sent_only_when_the_name_has_no_id_for_it() -> None:
    from pathlib import Path

    from exobridge.core import model_targets
    from exobridge.core.config import build

    raw = {
        "providers": {
            "local": {"kind": "openai", "url": "http://127.0.0.1:9/v1", "model": "llama3.2:3b"},
            "bare": {"kind": "openai", "url": "http://127.0.0.1:9/v1"},
        },
        "models": {"qwen-2.5-7b": {"local": "qwen2.5:7b"}},
    }
    config = build(raw, Path("config.toml"), env={})

    def sent(spec: str) -> dict[str, tuple[str | None, str | None]]:
        return {t.provider.name: (t.model, t.reason) for t in model_targets.targets(spec, config)}

    assert sent("phi-4")["local"] == ("llama3.2:3b", None)  # no id for it: the provider's own model
    assert sent("qwen-2.5-7b")["local"] == ("qwen2.5:7b", None)  # the user's entry wins
    assert sent("gpt-4o")["local"] == ("gpt-4o", None)  # a name outside the table is sent as typed
    assert sent("phi-4")["openrouter"] == ("microsoft/phi-4", None)  # a table column wins, model or not
    model, reason = sent("phi-4")["bare"]
    assert model is None
    assert reason == (
        "no id for phi-4 (exobridge config set models.phi-4.bare <id>, "
        "or give bare a default model: exobridge config set providers.bare.model <id>)"
    )
