"""Where exobridge keeps its files. Every path can be redirected by environment for tests and scripts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "exobridge"


def _xdg(variable: str, fallback: str) -> Path | None:
    """On Linux, the XDG base directory as platformdirs computes it, without paying for its import
    (every start-up and every TAB completion goes through here). None elsewhere: ask platformdirs."""
    if not sys.platform.startswith("linux"):
        return None
    value = os.environ.get(variable, "").strip()
    return Path(value if value else os.path.expanduser(fallback)) / APP_NAME


def config_dir() -> Path:
    fast = _xdg("XDG_CONFIG_HOME", "~/.config")
    if fast is not None:
        return fast
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
    fast = _xdg("XDG_CACHE_HOME", "~/.cache")
    if fast is not None:
        return fast
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def data_dir() -> Path:
    explicit = os.environ.get("EXOBRIDGE_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    fast = _xdg("XDG_DATA_HOME", "~/.local/share")
    if fast is not None:
        return fast
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))
