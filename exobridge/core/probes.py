"""Renamed: see exobridge.core.provider_status (shim until the lead sweeps imports)."""

from exobridge.core.provider_status import *  # noqa: F403
