"""Re-export shim: the keys file module is now core/keys_file.py (the lead removes this shim)."""

from exobridge.core.keys_file import (
    KEYS_FILE_MODE,
    KeystoreError,
    clean_key,
    file_mode,
    read_keys_file,
    remove_key,
    set_key,
    set_keys,
)

__all__ = [
    "KEYS_FILE_MODE",
    "KeystoreError",
    "clean_key",
    "file_mode",
    "read_keys_file",
    "remove_key",
    "set_key",
    "set_keys",
]
