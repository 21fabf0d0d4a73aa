"""Renamed: see exobridge.core.model_lists (shim until the lead sweeps imports)."""

from exobridge.core.model_lists import *  # noqa: F403
