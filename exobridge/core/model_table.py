"""Built-in table of well-known models and the id each backend (Exo legacy, Exo v1, OpenRouter, HF) uses."""

from __future__ import annotations

# Where each column was checked (public sources, read through the search index):
#
# "exo"         - Exo legacy line: keys of `model_cards` in exo-explore/exo `exo/models.py`
#                 (commit a25e02c913ea1bf5981ab41cadaebd2ec131dd0d, the version listing the DeepSeek-R1
#                 distills and phi-4). The legacy API silently swaps an unknown name for its default model,
#                 so these slugs must be exact.
# "exo_v1"      - Exo current line: `model_id` of the TOML cards in exo-explore/exo
#                 `resources/inference_model_cards/` (file name = id with "/" -> "--"), cross-checked with
#                 the older `MODEL_CARDS` dict in `src/exo/shared/models/model_cards.py`. Only the models
#                 that line ships a card for are filled in; it has no Qwen2.5 (4-bit), Mistral, Gemma 2,
#                 phi-4 or R1-distill cards. The Qwen2.5 1.5B/3B cards are full-precision `Qwen/...` repos.
#                 Nemotron 70B: the v1 card is a different mlx-community 4-bit upload than the legacy one.
# "openrouter"  - model pages on openrouter.ai (e.g. https://openrouter.ai/meta-llama/llama-3.2-3b-instruct,
#                 /qwen/qwen-2.5-7b-instruct, /qwen/qwen2.5-coder-7b-instruct, /mistralai/mistral-large-2407,
#                 /google/gemma-2-9b-it, /microsoft/phi-4, /deepseek/deepseek-r1-distill-qwen-14b). Ids with
#                 no page in the index (llama-3.1-8b, qwen-2.5-72b, qwen-2.5-coder-32b, nemotron-70b, other
#                 R1 distills, deepseek-r1) were confirmed from public code calling OpenRouter with them
#                 (e.g. BerriAI/litellm PR #6731 for qwen-2.5-coder-32b). Note the coder-7b id has no hyphen
#                 after "qwen" while coder-32b does. Left out where no OpenRouter listing was found.
# "huggingface" - canonical Hub repo ids (case-sensitive) from huggingface.co model pages/collections
#                 (Qwen2.5 and Qwen2.5-Coder collections, meta-llama, deepseek-ai, mistralai, google,
#                 microsoft, nvidia). Whether router.huggingface.co currently has an inference provider for
#                 a given repo is not checked here; the router answers with an error if none serves it.

# Columns are named after provider kinds. A kind's column may have twins holding other ids of the same model
# on another API line of that kind; a provider of the kind sends its column's id and accepts a twin's id when
# the node lists that one instead (Exo v1 lists "mlx-community/…" ids where legacy Exo lists slugs). A new
# kind needs no entry here: it reads the column named after it.
TWIN_COLUMNS: dict[str, tuple[str, ...]] = {"exo": ("exo_v1",)}

BUILTIN_MODELS: dict[str, dict[str, str]] = {
    # --- Llama -------------------------------------------------------------------------------------------
    "llama-3.2-1b": {
        "exo": "llama-3.2-1b",
        "exo_v1": "mlx-community/Llama-3.2-1B-Instruct-4bit",
        "openrouter": "meta-llama/llama-3.2-1b-instruct",
        "huggingface": "meta-llama/Llama-3.2-1B-Instruct",
    },
    "llama-3.2-3b": {
        "exo": "llama-3.2-3b",
        "exo_v1": "mlx-community/Llama-3.2-3B-Instruct-4bit",
        "openrouter": "meta-llama/llama-3.2-3b-instruct",
        "huggingface": "meta-llama/Llama-3.2-3B-Instruct",
    },
    "llama-3.1-8b": {
        "exo": "llama-3.1-8b",
        "exo_v1": "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit",
        "openrouter": "meta-llama/llama-3.1-8b-instruct",
        "huggingface": "meta-llama/Llama-3.1-8B-Instruct",
    },
    "llama-3.1-70b": {
        "exo": "llama-3.1-70b",
        "exo_v1": "mlx-community/Meta-Llama-3.1-70B-Instruct-4bit",
        "openrouter": "meta-llama/llama-3.1-70b-instruct",
        "huggingface": "meta-llama/Llama-3.1-70B-Instruct",
    },
    "llama-3.1-405b": {
        "exo": "llama-3.1-405b",
        "openrouter": "meta-llama/llama-3.1-405b-instruct",
        "huggingface": "meta-llama/Llama-3.1-405B-Instruct",
    },
    "llama-3.3-70b": {
        "exo": "llama-3.3-70b",
        "exo_v1": "mlx-community/Llama-3.3-70B-Instruct-4bit",
        "openrouter": "meta-llama/llama-3.3-70b-instruct",
        "huggingface": "meta-llama/Llama-3.3-70B-Instruct",
    },
    "llama-3-8b": {
        "exo": "llama-3-8b",
        "openrouter": "meta-llama/llama-3-8b-instruct",
        "huggingface": "meta-llama/Meta-Llama-3-8B-Instruct",
    },
    "llama-3-70b": {
        "exo": "llama-3-70b",
        "openrouter": "meta-llama/llama-3-70b-instruct",
        "huggingface": "meta-llama/Meta-Llama-3-70B-Instruct",
    },
    "nemotron-70b": {
        "exo": "nemotron-70b",
        "exo_v1": "mlx-community/Llama-3.1-Nemotron-70B-Instruct-HF-4bit",
        "openrouter": "nvidia/llama-3.1-nemotron-70b-instruct",
        "huggingface": "nvidia/Llama-3.1-Nemotron-70B-Instruct-HF",
    },
    # --- Qwen 2.5 ----------------------------------------------------------------------------------------
    "qwen-2.5-1.5b": {
        "exo": "qwen-2.5-1.5b",
        "exo_v1": "Qwen/Qwen2.5-1.5B-Instruct",
        "huggingface": "Qwen/Qwen2.5-1.5B-Instruct",
    },
    "qwen-2.5-3b": {
        "exo": "qwen-2.5-3b",
        "exo_v1": "Qwen/Qwen2.5-3B-Instruct",
        "huggingface": "Qwen/Qwen2.5-3B-Instruct",
    },
    "qwen-2.5-7b": {
        "exo": "qwen-2.5-7b",
        "openrouter": "qwen/qwen-2.5-7b-instruct",
        "huggingface": "Qwen/Qwen2.5-7B-Instruct",
    },
    "qwen-2.5-14b": {
        "exo": "qwen-2.5-14b",
        "huggingface": "Qwen/Qwen2.5-14B-Instruct",
    },
    "qwen-2.5-32b": {
        "exo": "qwen-2.5-32b",
        "huggingface": "Qwen/Qwen2.5-32B-Instruct",
    },
    "qwen-2.5-72b": {
        "exo": "qwen-2.5-72b",
        "openrouter": "qwen/qwen-2.5-72b-instruct",
        "huggingface": "Qwen/Qwen2.5-72B-Instruct",
    },
    "qwen-2.5-coder-7b": {
        "exo": "qwen-2.5-coder-7b",
        "openrouter": "qwen/qwen2.5-coder-7b-instruct",
        "huggingface": "Qwen/Qwen2.5-Coder-7B-Instruct",
    },
    "qwen-2.5-coder-14b": {
        "exo": "qwen-2.5-coder-14b",
        "huggingface": "Qwen/Qwen2.5-Coder-14B-Instruct",
    },
    "qwen-2.5-coder-32b": {
        "exo": "qwen-2.5-coder-32b",
        "openrouter": "qwen/qwen-2.5-coder-32b-instruct",
        "huggingface": "Qwen/Qwen2.5-Coder-32B-Instruct",
    },
    # --- Mistral -----------------------------------------------------------------------------------------
    "mistral-nemo": {
        "exo": "mistral-nemo",
        "openrouter": "mistralai/mistral-nemo",
        "huggingface": "mistralai/Mistral-Nemo-Instruct-2407",
    },
    "mistral-large": {
        "exo": "mistral-large",
        "openrouter": "mistralai/mistral-large-2407",
        "huggingface": "mistralai/Mistral-Large-Instruct-2407",
    },
    # --- DeepSeek R1 and its distills ----------------------------------------------------------------------
    "deepseek-r1": {
        "exo": "deepseek-r1",
        "openrouter": "deepseek/deepseek-r1",
        "huggingface": "deepseek-ai/DeepSeek-R1",
    },
    "deepseek-v3": {
        "exo": "deepseek-v3",
        "huggingface": "deepseek-ai/DeepSeek-V3",
    },
    "deepseek-r1-distill-qwen-1.5b": {
        "exo": "deepseek-r1-distill-qwen-1.5b",
        "openrouter": "deepseek/deepseek-r1-distill-qwen-1.5b",
        "huggingface": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    },
    "deepseek-r1-distill-qwen-7b": {
        "exo": "deepseek-r1-distill-qwen-7b",
        "openrouter": "deepseek/deepseek-r1-distill-qwen-7b",
        "huggingface": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    },
    "deepseek-r1-distill-qwen-14b": {
        "exo": "deepseek-r1-distill-qwen-14b",
        "openrouter": "deepseek/deepseek-r1-distill-qwen-14b",
        "huggingface": "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
    },
    "deepseek-r1-distill-qwen-32b": {
        "exo": "deepseek-r1-distill-qwen-32b",
        "openrouter": "deepseek/deepseek-r1-distill-qwen-32b",
        "huggingface": "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
    },
    "deepseek-r1-distill-llama-8b": {
        "exo": "deepseek-r1-distill-llama-8b",
        "openrouter": "deepseek/deepseek-r1-distill-llama-8b",
        "huggingface": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    },
    "deepseek-r1-distill-llama-70b": {
        "exo": "deepseek-r1-distill-llama-70b",
        "openrouter": "deepseek/deepseek-r1-distill-llama-70b",
        "huggingface": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
    },
    # --- Gemma 2 / Phi -------------------------------------------------------------------------------------
    "gemma2-9b": {
        "exo": "gemma2-9b",
        "openrouter": "google/gemma-2-9b-it",
        "huggingface": "google/gemma-2-9b-it",
    },
    "gemma2-27b": {
        "exo": "gemma2-27b",
        "openrouter": "google/gemma-2-27b-it",
        "huggingface": "google/gemma-2-27b-it",
    },
    "phi-4": {
        "exo": "phi-4",
        "openrouter": "microsoft/phi-4",
        "huggingface": "microsoft/phi-4",
    },
}
