"""Re-export shim: config_edit was split by job (the lead removes this shim after sweeping imports).

config_file      the file transaction (edit_config, replace_config, read_document, validate_text, starter)
config_keys      dotted keys and command-line values (split_key, resolve_key, coerce, EditError)
config_document  tomlkit edits (set_in_document, remove_from_document, document_value, document_config)
config_view      effective values with their sources (settings, effective_value)
provider_admin   add / remove / enable / move providers
provider_check   `providers add --check` (probe_models)
config_schema    the one field table and validator
"""

from exobridge.core.config_document import document_config, document_value, remove_from_document, set_in_document
from exobridge.core.config_file import (
    ChangedMeanwhile,
    edit_config,
    file_bytes,
    parse_document,
    read_document,
    replace_config,
    starter_text,
    validate_text,
    write_starter,
    writing,
)
from exobridge.core.config_keys import EditError, KeyPath, coerce, format_key, known_keys, resolve_key, split_key
from exobridge.core.config_schema import ENV_NAME, PROVIDER_NAME
from exobridge.core.config_view import Setting, effective_value, settings
from exobridge.core.provider_admin import (
    add_provider,
    is_builtin_provider,
    move_provider,
    planned_provider,
    remove_provider,
    set_enabled,
    unknown_provider,
)
from exobridge.core.provider_check import Probe, probe_models

__all__ = [
    "ENV_NAME",
    "PROVIDER_NAME",
    "ChangedMeanwhile",
    "EditError",
    "KeyPath",
    "Probe",
    "Setting",
    "add_provider",
    "coerce",
    "document_config",
    "document_value",
    "edit_config",
    "effective_value",
    "file_bytes",
    "format_key",
    "is_builtin_provider",
    "known_keys",
    "move_provider",
    "parse_document",
    "planned_provider",
    "probe_models",
    "read_document",
    "remove_from_document",
    "remove_provider",
    "replace_config",
    "resolve_key",
    "set_enabled",
    "set_in_document",
    "settings",
    "split_key",
    "starter_text",
    "unknown_provider",
    "validate_text",
    "write_starter",
    "writing",
]
