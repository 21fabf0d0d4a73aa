"""Provider text made safe for a terminal and a state file.

A provider's strings (error bodies, model ids, model lists, key labels, redirect locations) may carry
control characters and escape sequences: ESC/CSI (colours, screen clear), OSC (window title, hyperlinks),
C1 controls, DEL, CR (overwriting the line), bidi overrides (reordering what is shown). `terminal_text`
shows every one of them escaped, as Python would write it (`\\x1b`, `\\r`, `\\u202e`), so the sequence is
inert and still visible; printable text (any script, emoji) passes unchanged.

Model text is the exception: piped, it is written byte-exact (that is the contract). On a terminal the CLI
passes it through `model_text_for_terminal`, which keeps newlines, tabs and CR (models do write `\\r\\n`) and
escapes the rest, so an answer cannot retitle the window or clear the screen.

Rich markup is a different matter: provider strings are never given to Rich as markup (the CLI renders them
as `rich.text.Text`, and its consoles are built with markup off).
"""

from __future__ import annotations

import functools
import re

# Bidi embeddings, overrides and isolates, plus the zero-width marks that reorder or hide text.
_BIDI = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
# C0 (0x00-0x1f), DEL, C1 (0x80-0x9f), bidi; plus the line/paragraph separators that break a line.
_UNSAFE_CLASS = f"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]"
# The same without newline, tab and CR (model text keeps them).
_UNSAFE_IN_MODEL_TEXT_CLASS = f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]"


@functools.cache
def _pattern(char_class: str) -> re.Pattern[str]:
    """Compiled on first use (~0.25 ms each): a chat whose output is piped never needs them."""
    return re.compile(char_class)


def _escaped(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    if char == "\t":
        return "\\t"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal_text(text: object, *, keep_newlines: bool = False) -> str:
    """`text` with every control character and escape sequence shown escaped (`\\x1b[2J` stays visible).

    One line by default (a newline becomes `\\n`); `keep_newlines=True` keeps `\\n` for multi-line output.
    Anything that is not a string is converted with `str()` first.
    """
    value = text if isinstance(text, str) else str(text)
    if keep_newlines:
        return "\n".join(_pattern(_UNSAFE_CLASS).sub(_escaped, line) for line in value.split("\n"))
    return _pattern(_UNSAFE_CLASS).sub(_escaped, value)


def model_text_for_terminal(text: str) -> str:
    """Model text for a terminal: newlines, tabs and CR kept, every other control shown escaped."""
    return _pattern(_UNSAFE_IN_MODEL_TEXT_CLASS).sub(_escaped, text)


def is_terminal_safe(text: str) -> bool:
    """True when `terminal_text` would leave `text` unchanged."""
    return _pattern(_UNSAFE_CLASS).search(text) is None
