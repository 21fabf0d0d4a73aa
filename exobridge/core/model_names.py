"""Which logical model name (`llama-3.2-3b`) a server's own model id stands for.

Servers name the same model differently: Ollama `llama3.2:3b`, vLLM `meta-llama/Llama-3.2-3B-Instruct`,
llama.cpp `Llama-3.2-3B-Instruct-Q4_K_M.gguf`, Exo `mlx-community/Llama-3.2-3B-Instruct-4bit`. The rule
(docs/providers.md, "How served ids are matched"):

1. An id is reduced to its *name key*: lower case; a `:latest` tag, a folder or organisation (`org/`), a
   `.gguf` extension and a quantisation or format suffix (`Q4_K_M`, `q8_0`, `4bit`, `fp16`, `awq`, `gptq`,
   `gguf`, `mlx`) are dropped; the rest is cut into words at `-`, `_`, `:`, `.` between words, spaces, and
   where letters meet digits (`llama3.2` -> `llama`, `3.2`); the words `instruct`, `chat`, `it` and `hf` are
   dropped. Version and size stay as they are (`3.2`, `3b`, `1.5b`).
2. A served id matches a logical name when its key equals the key of the name itself or of any id the
   built-in table (core/model_table.py) gives for that name, on any backend.
3. An id whose key belongs to no name, or to more than one, is not matched: nothing is guessed.
4. A few names are matched only by their exact table ids (`EXACT_ONLY`), because a server's family name
   means another model: Ollama's `deepseek-r1` (and `deepseek-r1:latest`) is a 7B distill, not DeepSeek-R1.

So `llama3.2:3b`, `meta-llama/Llama-3.2-3B-Instruct` and `llama-3.2-3b` are one key (`llama 3.2 3b`), while
`deepseek-r1:7b` (a distill) does not match `deepseek-r1`, and `phi4:14b` does not match `phi-4`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

EXACT_ONLY = frozenset({"deepseek-r1"})
NOISE_WORDS = frozenset({"instruct", "chat", "it", "hf"})
# Quantisation and packaging suffixes, as whole words of the id (after the organisation is dropped).
QUANT_WORD = re.compile(
    r"^(?:q\d+(?:_[a-z0-9]+)*|iq\d+(?:_[a-z0-9]+)*|f16|f32|fp16|fp32|bf16|fp8|int4|int8|\d+bit|awq|gptq|gguf|mlx|"
    r"exl2|k_m|k_s|k_l)$"
)
_SPLIT = re.compile(r"[\s/:_\-]+")
_LETTERS_THEN_DIGITS = re.compile(r"(?<=[a-z])(?=\d)")
_NUMBER_DOT = re.compile(r"(?<=\d)\.(?=\d)")


def name_key(model_id: str) -> tuple[str, ...]:
    """The words that name a model, without organisation, tag, quantisation and `instruct`/`chat` noise."""
    text = model_id.strip().lower()
    if text.endswith(":latest"):
        text = text[: -len(":latest")]
    text = text.rsplit("/", 1)[-1]
    if text.endswith(".gguf"):
        text = text[: -len(".gguf")]
    # Quantisation names hold underscores (q4_k_m): drop them before the split cuts them apart.
    text = re.sub(r"(?:^|[-_.:])(?:i?q\d+(?:_[a-z0-9]+)*)$", "", text)
    words: list[str] = []
    for raw in _SPLIT.split(text):
        if not raw or QUANT_WORD.match(raw):
            continue
        # A dot between digits is a version (3.2, 1.5b); any other dot separates words.
        protected = _NUMBER_DOT.sub("\0", raw)
        for piece in protected.split("."):
            for word in _LETTERS_THEN_DIGITS.split(piece):
                word = word.replace("\0", ".")
                if word and word not in NOISE_WORDS and not QUANT_WORD.match(word):
                    words.append(word)
    return tuple(words)


def key_index(table: Mapping[str, Mapping[str, str]]) -> dict[tuple[str, ...], set[str]]:
    """Each name key -> the logical names whose own name or table ids have it."""
    index: dict[tuple[str, ...], set[str]] = {}
    for logical, ids in table.items():
        if logical in EXACT_ONLY:
            continue
        for model_id in (logical, *ids.values()):
            key = name_key(model_id)
            if key:
                index.setdefault(key, set()).add(logical)
    return index


def _exact(model_id: str, table: Mapping[str, Mapping[str, str]]) -> str | None:
    """The EXACT_ONLY name one of whose table ids is `model_id` (case-insensitive), or None."""
    wanted = model_id.strip().lower()
    for logical in EXACT_ONLY:
        if any(i.lower() == wanted for i in table.get(logical, {}).values()):
            return logical
    return None


def _names_for(
    model_id: str, table: Mapping[str, Mapping[str, str]], index: dict[tuple[str, ...], set[str]]
) -> set[str]:
    exact = _exact(model_id, table)
    return {exact} if exact else index.get(name_key(model_id), set())


def logical_name(model_id: str, table: Mapping[str, Mapping[str, str]] | None = None) -> str | None:
    """The one logical name `model_id` stands for, or None (no match, or more than one)."""
    if table is None:
        from exobridge.core.model_table import BUILTIN_MODELS

        table = BUILTIN_MODELS
    names = _names_for(model_id, table, key_index(table))
    return next(iter(names)) if len(names) == 1 else None


def match_served(served: Iterable[str], table: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, str]:
    """Logical name -> the served id that stands for it, for every served id that matches exactly one name.

    When two served ids stand for the same name (`llama3.2:3b` and `llama3.2:3b-instruct-q8_0`), the first
    listed wins."""
    if table is None:
        from exobridge.core.model_table import BUILTIN_MODELS

        table = BUILTIN_MODELS
    index = key_index(table)
    found: dict[str, str] = {}
    for model_id in served:
        names = _names_for(model_id, table, index)
        if len(names) == 1:
            found.setdefault(next(iter(names)), model_id)
    return found
