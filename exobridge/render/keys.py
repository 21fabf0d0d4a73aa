"""What `exobridge keys list` shows: see `render.config.key_table` (one table style for config and keys)."""

from exobridge.render.config import KEY_COLUMNS as COLUMNS
from exobridge.render.config import key_table

__all__ = ["COLUMNS", "key_table"]
