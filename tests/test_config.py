"""The config contract: defaults refined (not replaced) by the file, validated with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from exobridge.core import config as config_mod
from exobridge.core import keys, model_targets, secrets

PATH = Path("/tmp/x/config.toml")


def build(raw, env=None):
    return config_mod.build(raw, PATH, env=env or {})


def test_no_file_gives_the_embedded_defaults():
    cfg = build(None)
    assert [p.name for p in cfg.ordered()] == ["exo", "openrouter", "huggingface"]
    exo = cfg.providers["exo"]
    assert (exo.url, exo.connect_timeout, exo.first_token_timeout, exo.idle_timeout) == (
        "http://localhost:52415",
        1.0,
        60.0,
        30.0,
    )
    cloud = cfg.providers["openrouter"]
    assert (cloud.url, cloud.key_env, cloud.connect_timeout, cloud.idle_timeout) == (
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        5.0,
        60.0,
    )
    assert cfg.providers["huggingface"].url == "https://router.huggingface.co/v1"
    assert cfg.default_model == "llama-3.2-3b"
    assert cfg.sources["providers.exo.url"] == "default"


def test_file_refines_defaults_without_repeating_them():
    cfg = build({"providers": {"exo": {"url": "http://10.0.0.5:52415"}, "huggingface": {"enabled": False}}})
    assert cfg.providers["exo"].url == "http://10.0.0.5:52415"
    assert cfg.providers["exo"].kind == "exo" and cfg.providers["exo"].priority == 0
    assert cfg.providers["openrouter"].key_env == "OPENROUTER_API_KEY"
    assert [p.name for p in cfg.ordered()] == ["exo", "openrouter"]
    assert cfg.sources["providers.exo.url"] == "file"
    assert cfg.sources["providers.exo.kind"] == "default"


def test_new_provider_and_several_exo_nodes():
    cfg = build(
        {
            "providers": {
                "exo": {"urls": ["http://a:52415", "http://b:52415/"]},
                "mylocal": {
                    "kind": "openai",
                    "url": "http://127.0.0.1:8080/v1",
                    "priority": 3,
                    "headers": {"X-Team": "a"},
                    "first_token_timeout": 5,
                },
            }
        }
    )
    assert cfg.providers["exo"].urls == ["http://a:52415", "http://b:52415"]
    local = cfg.providers["mylocal"]
    assert (local.kind, local.priority, local.headers, local.first_token_timeout) == ("openai", 3, {"X-Team": "a"}, 5.0)


def test_env_overrides_exo_urls():
    cfg = build(None, env={"EXOBRIDGE_EXO_URL": "http://n1:52415, http://n2:8000"})
    assert cfg.providers["exo"].urls == ["http://n1:52415", "http://n2:8000"]
    assert cfg.sources["providers.exo.url"] == "env EXOBRIDGE_EXO_URL"
    with pytest.raises(config_mod.ConfigError, match="EXOBRIDGE_EXO_URL"):
        build(None, env={"EXOBRIDGE_EXO_URL": "http://[::1"})


@pytest.mark.parametrize(
    "raw,where,words",
    [
        ({"providers": {"exo": {"priority": "high"}}}, "providers.exo.priority", "integer"),
        ({"providers": {"exo": {"url": "localhost:52415"}}}, "providers.exo.url", "http"),
        ({"providers": {"x": {"url": "http://a"}}}, "providers.x", "missing 'kind'"),
        ({"providers": {"x": {"kind": "ollama", "url": "http://a"}}}, "providers.x.kind", "unknown kind"),
        ({"providers": {"exo": {"enabled": "no"}}}, "providers.exo.enabled", "true or false"),
        ({"providers": {"exo": {"idle_timeout": -1}}}, "providers.exo.idle_timeout", "positive"),
        ({"default_model": 3}, "default_model", "model name"),
        ({"models": {"m": {"exo": 1}}}, 'models."m"', "provider"),
        ({"providers": {"exo": {"url": "http://[::1"}}}, "providers.exo.url", "http"),
        ({"providers": {"exo": {"url": "http://a:99999"}}}, "providers.exo.url", "http"),
        ({"providers": {"exo": {"headers": {"X-Ü": "a"}}}}, "providers.exo.headers", "bad header name"),
        ({"providers": {"exo": {"headers": {"X-T": "a\nInjected: 1"}}}}, "providers.exo.headers", "one line"),
        ({"providers": {"exo": {"headers": {"X-T": "café"}}}}, "providers.exo.headers", "ASCII"),
    ],
)
def test_invalid_values_name_file_key_and_problem(raw, where, words):
    with pytest.raises(config_mod.ConfigError) as info:
        build(raw)
    message = str(info.value)
    assert message.startswith(f"{PATH}: {where}: ")
    assert words in message
    assert "\n" not in message


def test_parse_error_names_the_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('default_model = "x"\n\n[providers.exo\n')
    with pytest.raises(config_mod.ConfigError) as info:
        config_mod.load(path, env={})
    assert str(info.value).startswith(f"{path}: line 3")


def test_unknown_keys_are_kept_for_doctor_not_fatal():
    cfg = build({"colour": "blue", "providers": {"exo": {"colour": "red"}}})
    assert cfg.unknown_keys == ["colour", "providers.exo.colour"]


def test_model_table_and_user_override():
    cfg = build({"models": {"llama-3.2-3b": {"openrouter": "my/override"}, "mine": {"exo": "x"}}})
    targets = {t.provider.name: t for t in model_targets.targets("llama-3.2-3b", cfg)}
    assert targets["openrouter"].model == "my/override"
    assert targets["huggingface"].model == "meta-llama/Llama-3.2-3B-Instruct"
    assert targets["exo"].model == "llama-3.2-3b"
    assert targets["exo"].alternates == ("mlx-community/Llama-3.2-3B-Instruct-4bit",)
    mine = model_targets.targets("mine", cfg)
    assert (mine[0].provider.name, mine[0].model, mine[0].reason) == ("exo", "x", None)
    assert all(t.reason and "no id for mine" in t.reason for t in mine[1:])


def test_pinned_provider_and_ids_with_colons():
    cfg = build(None)
    assert model_targets.split_pinned("openrouter:anthropic/claude-3.5-sonnet", cfg) == (
        "openrouter",
        "anthropic/claude-3.5-sonnet",
    )
    assert model_targets.split_pinned("minimax/minimax-m2:free", cfg) == (None, "minimax/minimax-m2:free")
    pinned = model_targets.targets("openrouter:llama-3.2-3b", cfg)
    assert [(t.provider.name, t.model) for t in pinned] == [("openrouter", "meta-llama/llama-3.2-3b-instruct")]


def test_every_builtin_entry_is_complete_enough():
    from exobridge.core.model_table import BUILTIN_MODELS

    assert {
        "llama-3.2-1b",
        "llama-3.2-3b",
        "llama-3.1-8b",
        "llama-3.3-70b",
        "qwen-2.5-7b",
        "qwen-2.5-coder-7b",
        "mistral-nemo",
        "deepseek-r1-distill-qwen-7b",
        "gemma2-9b",
        "phi-4",
    } <= set(BUILTIN_MODELS)
    for name, ids in BUILTIN_MODELS.items():
        assert ids["exo"] == name
        assert set(ids) <= {"exo", "exo_v1", "openrouter", "huggingface"}
        assert "/" in ids.get("huggingface", "a/b") and "/" in ids.get("openrouter", "a/b")


@pytest.mark.parametrize(
    "key,masked",
    [
        ("sk-or-v1-0123456789abcdef9f2c", "sk-or-…9f2c"),
        ("hf_abcdefghijklmnopqrstuvwx", "hf_…uvwx"),
        ("sk-proj-abcdefghijkl1234", "sk-proj-…1234"),
        ("plainsecretvalue42", "…ue42"),
    ],
)
def test_mask_shows_prefix_and_tail_only(key, masked):
    assert secrets.mask(key) == masked


def test_key_precedence(tmp_path):
    provider = build(None).providers["openrouter"]
    stored = {"openrouter": "sk-or-file"}
    env = {"OPENROUTER_API_KEY": "sk-or-env"}
    assert keys.resolve(provider, "sk-or-flag", env, stored).source == "--key"
    assert keys.resolve(provider, None, env, stored) == keys.ResolvedKey("sk-or-env", "env OPENROUTER_API_KEY")
    assert keys.resolve(provider, None, {}, stored) == keys.ResolvedKey("sk-or-file", "keys file")
    assert keys.resolve(provider, None, {}, {}).source == "missing"
    exo = build(None).providers["exo"]
    assert keys.resolve(exo, None, {}, {}).source == "not needed"


def test_parsed_config_is_reused_only_for_identical_bytes(write_config):
    path = write_config('default_model = "first"\n')
    assert config_mod.load(path, env={}).default_model == "first"
    assert config_mod._parsed_cache().exists()
    path.write_text('default_model = "second"\n')
    assert config_mod.load(path, env={}).default_model == "second"
    path.write_text('default_model = "second"\n[providers.exo\n')
    with pytest.raises(config_mod.ConfigError):
        config_mod.load(path, env={})


def test_a_corrupt_parsed_cache_is_ignored(write_config):
    path = write_config('default_model = "kept"\n')
    config_mod.load(path, env={})
    config_mod._parsed_cache().write_bytes(b"\x00garbage")
    assert config_mod.load(path, env={}).default_model == "kept"


def test_an_unchanged_config_is_not_parsed_again(write_config):
    import subprocess
    import sys

    write_config('default_model = "cached"\n[providers.exo]\nurl = "http://127.0.0.1:9"\n')
    code = "from exobridge.core import config; print(config.load().default_model)"
    runs = [
        subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, timeout=30)
        for _ in range(2)
    ]
    assert [r.stdout for r in runs] == ["cached\n", "cached\n"]
    assert " tomllib" in runs[0].stderr
    assert " tomllib" not in runs[1].stderr
