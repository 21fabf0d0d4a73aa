"""Provider strings on a terminal: escape sequences shown escaped, never read as Rich markup (issue 9: 7, 8).

In-process with a test IO that says it is a terminal; the sanitiser itself is held by a property test.
"""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from exobridge.core.sanitize import is_terminal_safe, model_text_for_terminal, terminal_text
from exobridge.render.io import IOStreams
from tests.conftest import local_config
from tests.loopback import Exchange, closed_port, stream_words

ESC = "\x1b"
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202egnp.exe\r"
MARKUP = "[/oops] [bold red]loud[/] [link=http://evil.invalid]click[/link] :smile:"


def terminal(**env: str) -> IOStreams:
    return IOStreams.test(stdin_tty=True, stdout_tty=True, stderr_tty=True, env={**os.environ, **env})


def only_local(write_config, url: str) -> None:
    write_config(local_config(extra=f'[providers.local]\nkind = "openai"\nurl = "{url}/v1"\npriority = 0\n'))


# --- the sanitiser ---------------------------------------------------------------------------------------


def test_escape_sequences_are_shown_escaped_and_text_is_kept():
    assert terminal_text("ok \x1b[2J done") == "ok \\x1b[2J done"
    assert terminal_text("t\x1b]0;title\x07") == "t\\x1b]0;title\\x07"
    assert terminal_text("a\rb\nc\td\x7f\x9b") == "a\\rb\\nc\\td\\x7f\\x9b"
    assert terminal_text("\u202eevil") == "\\u202eevil"
    assert terminal_text("café 日本 🙂") == "café 日本 🙂"
    assert terminal_text("two\nlines", keep_newlines=True) == "two\nlines"
    assert model_text_for_terminal("line\r\nnext\t\x1b[31mred") == "line\r\nnext\t\\x1b[31mred"


@given(st.text())
def test_sanitised_text_has_no_control_character_and_keeps_every_printable_one(text):
    shown = terminal_text(text)
    assert is_terminal_safe(shown)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    printable = [c for c in text if is_terminal_safe(c)]
    assert all(c in shown for c in printable)
    assert terminal_text(text) == shown and len(shown) >= len(text)


@given(st.text())
def test_model_text_on_a_terminal_keeps_lines_and_has_no_escape(text):
    shown = model_text_for_terminal(text)
    assert ESC not in shown and "\x9b" not in shown
    assert shown.count("\n") == text.count("\n") and shown.count("\r") == text.count("\r")


# --- chat ------------------------------------------------------------------------------------------------


def test_chat_error_body_with_escapes_and_markup_is_shown_literally(server, write_config, cli):
    srv = server()
    srv.route("POST", "/v1/chat/completions")(lambda ex: ex.reply(500, {"error": {"message": f"{HOSTILE} {MARKUP}"}}))
    only_local(write_config, srv.url)
    result = cli("chat", "-m", "x", "Hi", io=terminal(FORCE_COLOR="1"))
    assert result.exit_code == 3, result.stderr
    assert "\x1b]0;" not in result.stderr and "\x1b[2J" not in result.stderr and "\u202e" not in result.stderr
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202egnp.exe\\r" in result.stderr
    assert MARKUP in result.stderr  # literal: no crash, no style, no link


def test_chat_served_model_id_with_escapes_is_escaped_in_the_summary(server, write_config, cli):
    srv = server()
    srv.route("POST", "/v1/chat/completions")(stream_words(["ok"], model=f"m{ESC}[31m[/bar]"))
    only_local(write_config, srv.url)
    result = cli("chat", "-m", "x", "Hi", io=terminal())
    assert result.exit_code == 0, result.stderr
    summary = result.stderr.splitlines()[-1]
    assert "m\\x1b[31m[/bar]" in summary


def test_model_text_is_byte_exact_piped_and_escaped_on_a_terminal(server, write_config, cli):
    srv = server()
    srv.route("POST", "/v1/chat/completions")(stream_words(["a\x1b[2Jb", "\r\n", "\x1b]0;t\x07"]))
    only_local(write_config, srv.url)
    piped = cli("chat", "-m", "x", "Hi")
    assert piped.stdout == "a\x1b[2Jb\r\n\x1b]0;t\x07\n"
    shown = cli("chat", "-m", "x", "Hi", io=terminal(NO_COLOR="1"))
    assert shown.stdout == "a\\x1b[2Jb\r\n\\x1b]0;t\\x07\n"


def test_attempt_reasons_and_urls_with_escapes_are_escaped_in_notices(server, write_config, cli, backup):
    srv = server()

    @srv.route("POST", "/v1/chat/completions")
    def refuse(ex: Exchange) -> None:
        ex.reply(503, {"error": f"busy {ESC}[2J [/oops]"})

    write_config(
        local_config(
            exo=f"http://127.0.0.1:{closed_port()}",
            extra=f'[providers.local]\nkind = "openai"\nurl = "{srv.url}/v1"\npriority = 1\n'
            f'[providers.spare]\nkind = "openai"\nurl = "{backup.url}"\npriority = 2\n',
        )
    )
    result = cli("chat", "-v", "-m", "plain", "Hi", io=terminal(FORCE_COLOR="1"))
    assert result.exit_code == 0, result.stderr
    assert "busy \\x1b[2J [/oops]" in result.stderr
    assert f"{ESC}[2J" not in result.stderr
