"""Where exobridge keeps its files. Every path can be redirected by environment for tests and scripts."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "exobridge"


def config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


def config_path() -> Path:
    """`$EXOBRIDGE_CONFIG`, else `config.toml` in the user config dir."""
    explicit = os.environ.get("EXOBRIDGE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return config_dir() / "config.toml"


def keys_path() -> Path:
    """`$EXOBRIDGE_KEYS_FILE`, else `keys.toml` beside the config file's default location."""
    explicit = os.environ.get("EXOBRIDGE_KEYS_FILE")
    if explicit:
        return Path(explicit).expanduser()
    return config_dir() / "keys.toml"


def cache_dir() -> Path:
    explicit = os.environ.get("EXOBRIDGE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def data_dir() -> Path:
    explicit = os.environ.get("EXOBRIDGE_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))
