"""core/secrets: the one mask and the one redactor (issue 9, defects 3 and 5, and their guard)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exobridge.core import secrets
from exobridge.core.secrets import KNOWN_PREFIXES, PIECE, Redactor, mask, redact

KEY_CHARS = string.ascii_letters + string.digits + "-_."
keys_st = st.text(alphabet=KEY_CHARS, min_size=1, max_size=80)
prefixed_keys_st = st.builds(
    lambda prefix, body: prefix + body, st.sampled_from([p for p, _ in KNOWN_PREFIXES] + [""]), keys_st
)
text_st = st.text(max_size=200)


def pieces(secret: str, public: int = 0) -> set[str]:
    """Every 8-character piece of `secret`, less those of its first `public` characters (the vendor prefix,
    which a mask shows: `sk-proj-sk-proj-` has `sk-proj-` twice, and only the prefix copy is public)."""
    every = {secret[i : i + PIECE] for i in range(len(secret) - PIECE + 1)}
    return every - {secret[i : i + PIECE] for i in range(public - PIECE + 1)}


def public_prefix(key: str) -> int:
    return next((len(p) for p, _ in KNOWN_PREFIXES if key.startswith(p) and len(key) > len(p)), 0)


@pytest.mark.parametrize(
    "key,masked",
    [
        ("sk-or-v1-0123456789abcdef9f2c", "sk-or-…9f2c"),
        ("hf_abcdefghijklmnopqrstuvwx", "hf_…uvwx"),
        ("sk-proj-abcdefghijkl1234", "sk-proj-…1234"),
        ("plainsecretvalue42", "…ue42"),
        # Defect 3: `xx-…-…` keys were masked after their second dash, showing nearly all of it.
        ("ab-CANARY_whole_key_visible-1", "…le-1"),
        ("sk-ant-api03-abcdefghijklmnop-wxyz", "sk-ant-…wxyz"),
        # Short keys show no tail: the last 4 of a 7-character key is most of it.
        ("sk-or-v1-new2222", "sk-or-…"),
        ("short", "…"),
        ("", ""),
    ],
)
def test_mask_shows_at_most_a_known_prefix_and_the_last_four(key: str, masked: str) -> None:
    assert mask(key) == masked


def test_defect_3_a_dashed_canary_key_is_never_shown_by_the_mask() -> None:
    shown = mask("ab-CANARY_whole_key_visible-1")
    assert "CANARY" not in shown and "whole" not in shown


@settings(max_examples=300, deadline=None)
@given(prefixed_keys_st)
def test_mask_property_only_a_known_prefix_and_at_most_four_characters_of_the_rest(key: str) -> None:
    shown = mask(key)
    shown_prefix, _, tail = shown.partition("…")
    assert shown_prefix in {"", *(s for _, s in KNOWN_PREFIXES)}
    assert key.startswith(shown_prefix) or key.startswith("sk-or-")
    assert len(tail) <= 4 and key.endswith(tail)
    assert len(key) - public_prefix(key) - len(tail) >= 8 or not tail  # at least 8 characters stay hidden
    assert not any(piece in shown for piece in pieces(key, public_prefix(key)))


def test_defect_5_a_key_cut_after_250_characters_leaves_no_eight_character_piece() -> None:
    key = "sk-or-v1-canary0123456789abcdefWXYZ"
    body = "x" * 250 + " Bearer " + key
    for cut in range(250, len(body) + 1):
        shown = redact(body[:cut], key)
        assert not any(piece in shown for piece in pieces(key, public_prefix(key))), cut
    assert redact(body, key).endswith("Bearer sk-or-…WXYZ")  # a whole key is shown as its mask


def test_redactor_takes_every_secret_and_leaves_other_text_alone() -> None:
    r = Redactor(["hf_secretAAAAAAAAAAAA", None, "", "abc", "tok12345678"])
    assert r.redact("nothing to hide here") == "nothing to hide here"
    assert r.redact("a hf_secretAAAAAAAAAAAA b tok12345678 c") == "a hf_…AAAA b … c"
    assert r.redact("piece: secretAAAAA") == "piece: […]"
    assert r.redact("abc stays (shorter than 4 is not a secret)") == "abc stays (shorter than 4 is not a secret)"
    assert not Redactor([]) and Redactor(["12345678"])
    assert r.redact_json({"error": "x tok12345678", "n": 3, "list": ["tok12345678"]}) == {
        "error": "x …",
        "n": 3,
        "list": ["…"],
    }


def test_the_public_vendor_prefix_alone_is_not_a_piece() -> None:
    r = Redactor(["sk-or-v1-0123456789abcdef9f2c"])
    assert r.redact("keys look like sk-or-v1-…") == "keys look like sk-or-v1-…"


@settings(max_examples=300, deadline=None)
@given(
    secret=prefixed_keys_st.filter(lambda k: len(k) >= 4),
    before=text_st,
    after=text_st,
    start=st.integers(min_value=0, max_value=80),
    length=st.integers(min_value=PIECE, max_value=120),
)
def test_redact_property_no_eight_character_piece_survives(
    secret: str, before: str, after: str, start: int, length: int
) -> None:
    """Any text holding any piece of a secret (or the whole of it): what comes out holds no 8-character piece
    (the public vendor prefix aside), and text without pieces comes out unchanged."""
    piece = secret[start : start + length] if start < len(secret) else secret
    shown = redact(before + piece + after, [secret])
    if len(secret) >= PIECE:
        assert not any(p in shown for p in pieces(secret, public_prefix(secret)))
    else:
        assert secret not in shown
    plain = "".join(c for c in before if c not in secret)
    assert redact(plain, [secret]) == plain or len(secret) < PIECE


@settings(max_examples=200, deadline=None)
@given(st.lists(prefixed_keys_st.filter(lambda k: len(k) >= PIECE), min_size=1, max_size=4), text_st)
def test_redact_property_several_secrets_at_once(keys: list[str], filler: str) -> None:
    text = filler.join(keys) + filler
    shown = Redactor(keys).redact(text)
    for key in keys:
        assert not any(p in shown for p in pieces(key, public_prefix(key)))


@pytest.mark.parametrize(
    "name,value,found",
    [
        ("Authorization", "Bearer abcdefgh12345678", ["Bearer abcdefgh12345678", "abcdefgh12345678"]),
        ("X-Api-Key", "k-0123456789", ["k-0123456789"]),
        ("Cookie", "session=abcdef0123456789", ["session=abcdef0123456789"]),
        ("X-Title", "my app", []),
        ("HTTP-Referer", "https://example.org", []),
    ],
)
def test_header_secrets(name: str, value: str, found: list[str]) -> None:
    assert secrets.header_secrets(name, value) == found


HDR = "hdr-0123456789"


def test_config_redactor_collects_keys_from_every_source(tmp_path, monkeypatch) -> None:
    from exobridge.core import config

    keys_file = tmp_path / "keys.toml"
    keys_file.write_text('openrouter = "sk-or-v1-fromthefile000000000001"\n', encoding="utf-8")
    monkeypatch.setenv("EXOBRIDGE_KEYS_FILE", str(keys_file))
    cfg = config.build(
        {
            "providers": {
                "mine": {"kind": "openai", "url": "http://127.0.0.1:9/v1", "headers": {"X-Api-Key": "hdr-0123456789"}}
            }
        },
        tmp_path / "config.toml",
        env={},
    )
    r = secrets.config_redactor(cfg, cli_key="cli-key-0123456789", env={"HF_TOKEN": "hf_fromtheenv0123456789"})
    assert {"sk-or-v1-fromthefile000000000001", "hdr-0123456789", "cli-key-0123456789", "hf_fromtheenv0123456789"} <= (
        r.secrets
    )


def test_config_redactor_still_takes_the_values_of_a_malformed_keys_file(tmp_path, monkeypatch) -> None:
    keys_file = tmp_path / "keys.toml"
    keys_file.write_text('openrouter = "sk-or-v1-malformed000000000001"\nbroken = = =\n', encoding="utf-8")
    monkeypatch.setenv("EXOBRIDGE_KEYS_FILE", str(keys_file))
    r = secrets.config_redactor(None, env={})
    assert "sk-or-v1-malformed000000000001" in r.secrets
