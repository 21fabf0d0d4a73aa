"""Renamed: see exobridge.core.model_targets (shim until the lead sweeps imports)."""

from exobridge.core.model_targets import *  # noqa: F403
from exobridge.core.model_targets import _ids_for  # noqa: F401
