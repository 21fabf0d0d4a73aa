"""`exobridge config import-legacy`: the old token manager's JSON file into our config and keys file.

Encrypted fixtures are made at test time with a fresh Fernet key (nothing secret is committed).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

fernet = pytest.importorskip("cryptography.fernet")

OR_KEY = "sk-or-v1-legacyplain0000aaaa1111"
HF_KEY = "hf_legacyencrypted2222bbbb3333"
TOGETHER_KEY = "tgp-legacytogether4444cccc5555"


def home() -> Path:
    return Path(os.environ["HOME"])


def config_file() -> Path:
    return Path(os.environ["EXOBRIDGE_CONFIG"])


def keys_file() -> Path:
    return Path(os.environ["EXOBRIDGE_KEYS_FILE"])


def encrypt(secret: str, with_key_file: bool = True) -> str:
    """The legacy form: base64 of a Fernet token; the Fernet key in ~/.token_manager_key."""
    key_path = home() / ".token_manager_key"
    if not key_path.exists():
        key_path.write_bytes(fernet.Fernet.generate_key())
    token = fernet.Fernet(key_path.read_bytes()).encrypt(secret.encode())
    if not with_key_file:
        key_path.unlink()
    return base64.b64encode(token).decode()


def write_legacy(providers: list[dict[str, Any]], path: Path | None = None, **top: Any) -> Path:
    path = path or home() / ".token_manager_config.json"
    path.write_text(json.dumps({"providers": providers, "current_provider_index": 0, **top}), encoding="utf-8")
    return path


def exo_local(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Exo Local",
        "type": "local",
        "base_url": "http://localhost:8000",
        "chat_endpoint": "/v1/chat/completions",
        "status": "active",
        **extra,
    }


def openrouter(**extra: Any) -> dict[str, Any]:
    return {
        "name": "OpenRouter",
        "base_url": "https://openrouter.ai/api/v1",
        "chat_endpoint": "/chat/completions",
        "models_endpoint": "/models",
        "status": "ProviderStatus.ACTIVE",
        "rate_limit": 200,
        **extra,
    }


def hugging_face(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Hugging Face",
        "base_url": "https://api-inference.huggingface.co",
        "chat_endpoint": "/models/{model}",
        "status": "active",
        "token_limit": 10000,
        **extra,
    }


def together(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Together AI",
        "base_url": "https://api.together.xyz",
        "chat_endpoint": "/v1/chat/completions",
        "status": "ProviderStatus.DISABLED",
        "capabilities": ["chat"],
        **extra,
    }


def config() -> dict[str, Any]:
    return tomllib.loads(config_file().read_text(encoding="utf-8"))


def stored_keys() -> dict[str, str]:
    return tomllib.loads(keys_file().read_text(encoding="utf-8"))


def effective(cli) -> dict[str, dict[str, Any]]:
    """Provider rows as `keys list --json` sees them after the import (the config must load)."""
    proc = cli("keys", "list", "--json")
    assert proc.exit_code == 0, proc.stderr
    return {row["provider"]: row for row in json.loads(proc.stdout)["providers"]}


def test_full_import_maps_every_provider_and_stores_keys(cli):
    write_legacy(
        [
            openrouter(priority=2, api_key=OR_KEY),
            exo_local(priority=1),
            hugging_face(priority=3, api_key_encrypted=encrypt(HF_KEY)),
            together(priority=4, api_key=TOGETHER_KEY),
        ],
        billing_protection={"enabled": True, "max_daily_cost": 1.0},
        free_models_only=False,
    )
    proc = cli("config", "import-legacy")
    assert proc.exit_code == 0, proc.stderr
    providers = config()["providers"]
    assert providers["exo"] == {"url": "http://localhost:8000"}
    assert "52415" in proc.stderr
    assert "openrouter" not in providers  # same url and order as the defaults: nothing to write
    assert "huggingface" not in providers  # the router url and rank 2 are what the defaults already give
    assert "router.huggingface.co/v1" in proc.stderr
    assert providers["together-ai"] == {
        "kind": "openai",
        "url": "https://api.together.xyz/v1",
        "priority": 3,
        "enabled": False,
        "key_env": "TOGETHER_AI_API_KEY",
    }
    assert stored_keys() == {"openrouter": OR_KEY, "huggingface": HF_KEY, "together-ai": TOGETHER_KEY}
    assert keys_file().stat().st_mode & 0o777 == 0o600
    for field in ("billing_protection", "free_models_only", "rate_limit", "token_limit", "capabilities"):
        assert field in proc.stderr
    rows = effective(cli)
    assert {name: rows[name]["source"] for name in ("openrouter", "huggingface", "together-ai")} == {
        "openrouter": "keys file",
        "huggingface": "keys file",
        "together-ai": "keys file",
    }
    assert rows["together-ai"]["enabled"] is False
    # Keys are shown masked, never raw; the ciphertext is never shown either.
    assert "sk-or-…1111" in proc.stderr
    for secret in (OR_KEY, HF_KEY, TOGETHER_KEY, "gAAAA"):
        assert secret not in proc.stdout + proc.stderr


def test_missing_priority_keeps_list_order_with_exo_first(cli):
    write_legacy([together(status="active"), openrouter(), exo_local()])
    assert cli("config", "import-legacy").exit_code == 0
    providers = config()["providers"]
    # exo 0 (the default already), together-ai 1, openrouter 2.
    assert "priority" not in providers["exo"]
    assert providers["together-ai"]["priority"] == 1
    assert providers["openrouter"]["priority"] == 2
    assert "enabled" not in providers["together-ai"]


def test_old_status_form_disables(cli):
    write_legacy([exo_local(status="ProviderStatus.DISABLED"), openrouter(status="disabled")])
    assert cli("config", "import-legacy").exit_code == 0
    providers = config()["providers"]
    assert providers["exo"]["enabled"] is False
    assert providers["openrouter"]["enabled"] is False


def test_encrypted_key_without_key_file_is_imported_without_key(cli):
    write_legacy([openrouter(api_key_encrypted=encrypt(OR_KEY, with_key_file=False))])
    proc = cli("config", "import-legacy")
    assert proc.exit_code == 0, proc.stderr
    assert "exobridge keys set openrouter" in proc.stderr
    assert ".token_manager_key" in proc.stderr
    assert not keys_file().exists()


def test_encrypted_key_without_cryptography_says_what_to_run(cli, monkeypatch):
    write_legacy([hugging_face(api_key_encrypted=encrypt(HF_KEY))])
    # None in sys.modules makes `import cryptography…` raise ImportError, as when the package is not installed.
    for name in {"cryptography", "cryptography.fernet", *(m for m in sys.modules if m.startswith("cryptography."))}:
        monkeypatch.setitem(sys.modules, name, None)
    proc = cli("config", "import-legacy")
    assert proc.exit_code == 0, proc.stderr
    assert "'cryptography' package is not installed" in proc.stderr
    assert "exobridge keys set huggingface" in proc.stderr
    assert not keys_file().exists()


def test_wrong_key_file_does_not_decrypt(cli):
    write_legacy([openrouter(api_key_encrypted=encrypt(OR_KEY))])
    (home() / ".token_manager_key").write_bytes(fernet.Fernet.generate_key())
    proc = cli("config", "import-legacy")
    assert proc.exit_code == 0
    assert "does not decrypt" in proc.stderr and "exobridge keys set openrouter" in proc.stderr
    assert not keys_file().exists()


def test_dry_run_prints_the_result_and_writes_nothing(cli):
    config_file().write_text('default_model = "mine"\n')
    before = config_file().read_bytes()
    write_legacy([together(api_key=TOGETHER_KEY)])
    proc = cli("config", "import-legacy", "--dry-run")
    assert proc.exit_code == 0, proc.stderr
    result = tomllib.loads(proc.stdout)
    assert result["default_model"] == "mine"
    assert result["providers"]["together-ai"]["kind"] == "openai"
    assert "would store" in proc.stderr
    assert config_file().read_bytes() == before
    assert not keys_file().exists()
    assert TOGETHER_KEY not in proc.stdout + proc.stderr


def test_merge_keeps_comments_existing_providers_and_stored_keys(cli):
    original = (
        "# my settings\n"
        'default_model = "llama-3.2-3b"  # the one I like\n'
        "\n"
        "[providers.openrouter]\n"
        "priority = 9  # keep my order\n"
        "\n"
        "[providers.mine]\n"
        'kind = "openai"\n'
        'url = "http://127.0.0.1:9/v1"\n'
    )
    config_file().write_text(original)
    keys_file().write_text('openrouter = "sk-or-v1-alreadystored9999"\n')
    write_legacy([exo_local(), openrouter(api_key=OR_KEY)])
    proc = cli("config", "import-legacy")
    assert proc.exit_code == 0, proc.stderr
    text = config_file().read_text()
    assert text.startswith(original.rstrip("\n"))  # everything the user wrote, untouched, new tables after
    assert config()["providers"]["openrouter"] == {"priority": 9}
    assert "kept providers.openrouter.priority = 9" in proc.stderr
    assert config()["providers"]["exo"] == {"url": "http://localhost:8000"}
    assert stored_keys() == {"openrouter": "sk-or-v1-alreadystored9999"}
    assert "kept the key already stored" in proc.stderr
    # A second run changes nothing.
    assert cli("config", "import-legacy").exit_code == 0
    assert config_file().read_text() == text


def test_explicit_path_argument(cli, tmp_path):
    path = write_legacy([openrouter(api_key=OR_KEY)], path=tmp_path / "old.json")
    assert cli("config", "import-legacy", str(path)).exit_code == 0
    assert stored_keys() == {"openrouter": OR_KEY}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON (line 1"),
        ("[1, 2]", "not a token manager config"),
        ('{"providers": {"a": 1}}', "not a token manager config"),
        ('{"providers": [{"base_url": "https://x"}]}', 'providers[0]: expected an object with a "name"'),
        pytest.param("[" * 100_000, "nested too deeply", id="deeply-nested"),
    ],
)
def test_bad_legacy_file_is_one_line_exit_4(cli, tmp_path, content, expected):
    path = tmp_path / "legacy.json"
    path.write_text(content)
    proc = cli("config", "import-legacy", str(path))
    assert proc.exit_code == 4
    assert proc.stderr.count("\n") == 1
    assert str(path) in proc.stderr and expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not config_file().exists()


def test_missing_legacy_file_exit_4(cli):
    proc = cli("config", "import-legacy")
    assert proc.exit_code == 4
    assert ".token_manager_config.json: no such file" in proc.stderr


def test_odd_but_usable_legacy_files_import(cli, tmp_path):
    """A BOM from a Windows editor, a URL that cannot be parsed, and accents in a name."""
    path = tmp_path / "legacy.json"
    providers = [
        {"name": "Modèle Local", "base_url": "https://llm.example.test/v1"},
        {"name": "Broken", "base_url": "https://[::1"},
        {"name": "Far Port", "base_url": "https://llm.example.test:99999/v1"},
    ]
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"providers": providers}).encode())
    proc = cli("config", "import-legacy", str(path))
    assert proc.exit_code == 0, proc.stderr
    assert "skipped Broken: base_url is not an http(s) URL" in proc.stderr
    assert "skipped Far Port: base_url is not an http(s) URL" in proc.stderr
    assert config()["providers"] == {
        "modele-local": {
            "kind": "openai",
            "url": "https://llm.example.test/v1",
            "priority": 1,  # after Exo (0), never tying with it (issue 9, defect 13)
            "key_env": "MODELE_LOCAL_API_KEY",
        }
    }


def test_imported_tables_keep_a_blank_line_before_the_users_next_table(cli):
    config_file().write_text("[providers.openrouter]\npriority = 9\n\n[my_notes]  # mine\nx = 1\n")
    write_legacy([exo_local(), together()])
    assert cli("config", "import-legacy").exit_code == 0
    text = config_file().read_text()
    assert text.endswith("\n\n[my_notes]  # mine\nx = 1\n") and "\n\n[providers.together-ai]\n" in text
    assert config()["my_notes"] == {"x": 1}


def test_decrypt_accepts_the_base64_layer_padded_or_not_and_a_bare_token(tmp_path):
    from exobridge.core.legacy_import import decrypt_key

    key_file = tmp_path / "fernet.key"
    key_file.write_bytes(fernet.Fernet.generate_key() + b"\n")
    box = fernet.Fernet(key_file.read_bytes().strip())
    layers = {
        "base64": lambda token: base64.b64encode(token).decode(),
        "unpadded": lambda token: base64.urlsafe_b64encode(token).decode().rstrip("="),
        "bare": lambda token: token.decode(),
    }
    for n in range(3):  # token lengths differ in padding
        secret = f"sk-or-v1-secret{'x' * n}"
        token = box.encrypt(secret.encode())
        for name, layer in layers.items():
            assert decrypt_key(layer(token), key_file) == (secret, None), name


def test_defect_13_imported_names_give_valid_key_variables_and_clouds_come_after_exo(cli, tmp_path):
    """`01-ai` gave `key_env = "01_AI_API_KEY"` (not a variable name) and the first cloud got priority 0."""
    from exobridge.core.config_schema import ENV_NAME
    from exobridge.core.legacy_import import env_name_for

    path = tmp_path / "legacy.json"
    providers = [
        {"name": "01-ai", "base_url": "https://api.01.example.test/v1"},
        {"name": "OpenRouter", "base_url": "https://openrouter.ai/api/v1"},
    ]
    path.write_text(json.dumps({"providers": providers}), encoding="utf-8")
    result = cli("config", "import-legacy", str(path))
    assert result.exit_code == 0, result.stderr
    imported = config()["providers"]
    assert imported["01-ai"]["key_env"] == "_01_AI_API_KEY"
    assert all(table.get("priority", 1) >= 1 for table in imported.values()), imported
    from exobridge.core.config import load

    order = [p.name for p in load().ordered()]
    assert order[0] == "exo"
    for name in ("01-ai", "42", "über-llm", "a--b", "-", "9"):
        assert ENV_NAME.match(env_name_for(name)), name
