"""Hints are made by the CLI from a failure kind and the provider's config: one wording each."""

from __future__ import annotations

from exobridge.cli import hints
from exobridge.core.errors import FailureKind
from tests.test_routing import make_config


def providers():
    return make_config(
        {
            "exo": {"enabled": True, "url": "http://127.0.0.1:9"},
            "openrouter": {"enabled": True, "url": "http://127.0.0.1:9"},
            "huggingface": {"enabled": True, "url": "http://127.0.0.1:9"},
        }
    ).providers


def test_each_failure_kind_gets_its_one_hint():
    p = providers()
    assert "start Exo" in hints.hint_for(FailureKind.CONNECT, p["exo"])
    assert hints.hint_for(FailureKind.CONNECT, p["openrouter"]) is None
    assert hints.hint_for(FailureKind.NO_KEY, p["openrouter"]) == "exobridge keys set openrouter"
    assert hints.hint_for("auth", p["huggingface"]) == (
        "set a valid key: exobridge keys set huggingface (or HF_TOKEN or HUGGING_FACE_HUB_TOKEN)"
    )
    assert hints.hint_for(FailureKind.CREDITS, p["openrouter"]) == "add credits: openrouter uses OPENROUTER_API_KEY"
    assert "exobridge models --provider exo" in hints.hint_for(FailureKind.MODEL_UNAVAILABLE, p["exo"])
    assert hints.hint_for(FailureKind.SERVER, p["exo"]) is None
    assert hints.hint_for(None, p["exo"]) is None and hints.hint_for("not-a-kind", p["exo"]) is None


def test_no_key_has_one_wording_that_starts_like_the_core_reason():
    from exobridge.core import keys

    p = providers()
    assert hints.no_key(p["openrouter"]) == "no API key (set OPENROUTER_API_KEY, or exobridge keys set openrouter)"
    assert keys.missing_key_reason(p["openrouter"]).startswith(hints.NO_KEY)
    assert hints.NO_KEY == keys.NO_KEY


def test_free_comes_from_the_kind_class():
    p = providers()
    assert hints.kind_is_free(p["exo"]) and not hints.kind_is_free(p["openrouter"])
    assert not hints.kind_is_free(None)
