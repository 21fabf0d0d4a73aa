"""Our Linux fast path for the XDG directories must agree with platformdirs, which it stands in for."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs
import pytest

from exobridge.core import paths

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fast path is Linux-only")


@pytest.mark.parametrize("xdg_set", [True, False])
def test_fast_paths_match_platformdirs(monkeypatch, tmp_path, xdg_set):
    for name in ("EXOBRIDGE_CONFIG", "EXOBRIDGE_CACHE_DIR", "EXOBRIDGE_DATA_DIR", "EXOBRIDGE_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, sub in (("XDG_CONFIG_HOME", "c"), ("XDG_CACHE_HOME", "k"), ("XDG_DATA_HOME", "d")):
        if xdg_set:
            monkeypatch.setenv(name, str(tmp_path / sub))
        else:
            monkeypatch.delenv(name, raising=False)
    assert paths.config_dir() == Path(platformdirs.user_config_dir("exobridge"))
    assert paths.cache_dir() == Path(platformdirs.user_cache_dir("exobridge"))
    assert paths.data_dir() == Path(platformdirs.user_data_dir("exobridge"))
    assert paths.config_path() == paths.config_dir() / "config.toml"
