"""Where exobridge keeps its files. Every path can be redirected by environment for tests and scripts.

The home folder is `$HOME` when it is an absolute path; when HOME is unset, empty or relative, it is the
user's home from the password database (so `HOME=""` never puts files at `/.config/…`); when neither gives
an absolute path, a ConfigError (exit 4) says to set HOME. XDG variables holding a relative
path are ignored, as the XDG spec asks. exobridge's folders are created 0700 (core/files.make_private_dir).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "exobridge"


def home() -> Path:
    """The user's home folder: an absolute `$HOME`, else the password database's; ConfigError otherwise."""
    value = os.environ.get("HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    try:
        import pwd

        entry = pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError, OSError):
        entry = ""
    if entry and os.path.isabs(entry) and entry != "/":
        return Path(entry)
    from exobridge.core.errors import ConfigError

    raise ConfigError("environment", "HOME", "not set to an absolute path, and the user has no home folder; set HOME")


def expand_user(value: str) -> Path:
    """`~/x` → `<home>/x` (with `home()`, so an empty HOME is not `/`); other paths unchanged."""
    if value == "~" or value.startswith("~/"):
        return home() / value[2:]
    return Path(value)


def _xdg(variable: str, fallback: str) -> Path | None:
    """On Linux, the XDG base directory as platformdirs computes it, without paying for its import
    (every start-up and every TAB completion goes through here). None elsewhere: ask platformdirs.
    A relative value is ignored (the XDG spec)."""
    if not sys.platform.startswith("linux"):
        return None
    value = os.environ.get(variable, "").strip()
    return (Path(value) if value and os.path.isabs(value) else expand_user(fallback)) / APP_NAME


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
        return expand_user(explicit)
    return config_dir() / "config.toml"


def keys_path() -> Path:
    """`$EXOBRIDGE_KEYS_FILE`, else `keys.toml` beside the config file's default location."""
    explicit = os.environ.get("EXOBRIDGE_KEYS_FILE")
    if explicit:
        return expand_user(explicit)
    return config_dir() / "keys.toml"


def cache_dir() -> Path:
    explicit = os.environ.get("EXOBRIDGE_CACHE_DIR")
    if explicit:
        return expand_user(explicit)
    fast = _xdg("XDG_CACHE_HOME", "~/.cache")
    if fast is not None:
        return fast
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def data_dir() -> Path:
    explicit = os.environ.get("EXOBRIDGE_DATA_DIR")
    if explicit:
        return expand_user(explicit)
    fast = _xdg("XDG_DATA_HOME", "~/.local/share")
    if fast is not None:
        return fast
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))
