"""`exobridge keys …` as a user runs it (in-process, a real process where only one shows it), and where keys
may and may not go."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import exobridge_command, local_config
from tests.loopback import Exchange, stream_words

CANARY = "sk-or-v1-canary0123456789abcdefWXYZ"


def keys_file() -> Path:
    return Path(os.environ["EXOBRIDGE_KEYS_FILE"])


def stored() -> dict[str, str]:
    return tomllib.loads(keys_file().read_text(encoding="utf-8"))


def test_set_from_stdin_stores_0600_and_confirms_masked(cli):
    proc = cli("keys", "set", "openrouter", stdin=CANARY + "\n")
    assert proc.exit_code == 0, proc.stderr
    assert stored() == {"openrouter": CANARY}
    assert keys_file().stat().st_mode & 0o777 == 0o600
    assert "sk-or-…WXYZ" in proc.stderr
    assert CANARY not in proc.stdout + proc.stderr
    # No temp file is left beside it (the write is a rename).
    assert sorted(p.name for p in keys_file().parent.glob(".keys.toml.*") if p.suffix == ".tmp") == []


def test_set_replaces_one_key_keeps_the_others_and_forces_0600(cli):
    keys_file().write_text('# my keys\nhuggingface = "hf_old0000"\nopenrouter = "sk-or-v1-old1111"\n')
    keys_file().chmod(0o644)
    assert cli("keys", "set", "openrouter", stdin="sk-or-v1-new2222").exit_code == 0
    assert stored() == {"huggingface": "hf_old0000", "openrouter": "sk-or-v1-new2222"}
    assert keys_file().read_text().startswith("# my keys")
    assert keys_file().stat().st_mode & 0o777 == 0o600


@pytest.mark.process  # separate processes writing the keys file at once, keys through real pipes
def test_concurrent_sets_from_separate_processes_all_land(write_config):
    """Real processes: concurrent writers of the keys file, each key piped into its own `keys set`."""
    names = [f"p{i}" for i in range(6)]
    write_config(
        "\n".join(f'[providers.{n}]\nkind = "openai"\nurl = "http://127.0.0.1:9/v1"\nenabled = false\n' for n in names)
    )
    procs = [
        subprocess.Popen(
            [*exobridge_command(), "keys", "set", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]
    keys = {name: f"{CANARY[:-4]}PIP{i}" for i, name in enumerate(names)}
    # Every process is started (and waiting on stdin) before any is fed, so they all write at about once.
    # Each key arrives through a real pipe, as `printf '%s\n' "$KEY" | exobridge keys set NAME` sends it.
    for name, proc in zip(names, procs, strict=True):
        proc.stdin.write(f"{keys[name]}\n".encode())
        proc.stdin.close()
    for name, proc in zip(names, procs, strict=True):
        code = proc.wait(timeout=30)
        out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
        assert code == 0, err
        assert f"sk-or-…{keys[name][-4:]}" in err  # confirmed, masked
        assert keys[name] not in out + err
    assert stored() == keys
    assert keys_file().stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in keys_file().parent.glob(".keys.toml.*") if p.suffix == ".tmp") == []


def test_set_refuses_unknown_provider_with_nearest_names(cli):
    proc = cli("keys", "set", "opnrouter", stdin=CANARY)
    assert proc.exit_code == 2
    assert "did you mean openrouter" in proc.stderr
    assert not keys_file().exists()


@pytest.mark.parametrize("text", ["", "\n", "   \n"])
def test_set_refuses_an_empty_key(cli, text):
    proc = cli("keys", "set", "openrouter", stdin=text)
    assert proc.exit_code == 2
    assert "empty key" in proc.stderr
    assert not keys_file().exists()


def test_set_never_takes_the_key_from_argv(cli):
    proc = cli("keys", "set", "openrouter", CANARY, stdin="")
    assert proc.exit_code == 2
    assert not keys_file().exists()


def test_set_refuses_a_multi_line_key(cli):
    proc = cli("keys", "set", "openrouter", stdin="line one\nline two\n")
    assert proc.exit_code == 2
    assert not keys_file().exists()


def test_list_get_remove_path(cli):
    cli("keys", "set", "openrouter", stdin=CANARY)
    listing = cli("keys", "list")
    assert listing.exit_code == 0
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert "keys file" in rows["openrouter"] and "sk-or-…WXYZ" in rows["openrouter"]
    assert "missing" in rows["huggingface"]
    assert "not needed" in rows["exo"]

    data = json.loads(cli("keys", "list", "--json").stdout)
    by_name = {row["provider"]: row for row in data["providers"]}
    assert by_name["openrouter"]["source"] == "keys file"
    assert by_name["openrouter"]["masked"] == "sk-or-…WXYZ"
    assert by_name["huggingface"]["source"] == "missing"
    assert data["keys_file"] == str(keys_file())

    got = cli("keys", "get", "openrouter")
    assert (got.exit_code, got.stdout) == (0, CANARY + "\n")
    missing = cli("keys", "get", "huggingface")
    assert missing.exit_code == 1
    assert missing.stdout == ""
    assert "exobridge keys set huggingface" in missing.stderr

    assert cli("keys", "path").stdout == f"{keys_file()}\n"

    removed = cli("keys", "remove", "openrouter")
    assert removed.exit_code == 0
    assert "openrouter" not in stored()
    again = cli("keys", "remove", "openrouter")
    assert again.exit_code == 0 and "nothing removed" in again.stderr
    assert cli("keys", "remove", "nosuch").exit_code == 2


def test_environment_beats_the_keys_file(cli):
    cli("keys", "set", "openrouter", stdin="sk-or-v1-fromfile1111")
    env = {"OPENROUTER_API_KEY": "sk-or-v1-fromenv000002222"}
    data = json.loads(cli("keys", "list", "--json", env=env).stdout)
    row = next(r for r in data["providers"] if r["provider"] == "openrouter")
    assert row["source"] == "env OPENROUTER_API_KEY"
    assert row["masked"] == "sk-or-…2222"
    assert "shadowed" in row["note"]
    assert cli("keys", "get", "openrouter", env=env).stdout == "sk-or-v1-fromenv000002222\n"
    # Setting a key while the variable is set says which one wins.
    proc = cli("keys", "set", "openrouter", stdin="sk-or-v1-newfile3333", env=env)
    assert "OPENROUTER_API_KEY is set and takes precedence" in proc.stderr


def test_canary_key_appears_only_in_keys_get(cli, write_config, server):
    refusing = server()
    refusing.route("POST", "/v1/chat/completions")(
        lambda ex: ex.reply(401, {"error": {"message": "No auth credentials found", "code": 401}})
    )
    write_config(local_config(openrouter=f"{refusing.url}/v1"))
    cli("keys", "set", "openrouter", stdin=CANARY)
    outputs = [
        cli("keys", "list"),
        cli("keys", "list", "--json"),
        cli("chat", "--json", "-p", "openrouter", "Hi"),
        cli("chat", "-v", "-p", "openrouter", "Hi"),
    ]
    shown = cli("config", "show")
    if shown.exit_code != 2:  # `config show` exists once the config group lands
        outputs.append(shown)
    for proc in outputs:
        assert CANARY not in proc.stdout + proc.stderr, proc.args
    assert outputs[2].exit_code == 3
    assert refusing.requests[0].headers["authorization"] == f"Bearer {CANARY}"
    assert cli("keys", "get", "openrouter").stdout.strip() == CANARY


@pytest.mark.parametrize("redirecting", ["openrouter", "huggingface"])
def test_each_key_goes_only_to_its_own_host_and_never_follows_a_redirect(cli, write_config, server, redirecting):
    """Two loopback 'clouds'. The first answers 307 to the other's host; chat fails over instead of following."""
    hosts = {"openrouter": server(), "huggingface": server()}
    other = "huggingface" if redirecting == "openrouter" else "openrouter"
    secret = {"openrouter": "sk-or-v1-onlyforopenrouter1111", "huggingface": "hf_onlyforhuggingface2222"}

    def redirect(ex: Exchange) -> None:
        ex.reply(307, "", headers={"Location": f"{hosts[other].url}/redirected/chat/completions"})

    hosts[redirecting].route("POST", "/v1/chat/completions")(redirect)
    hosts[other].route("POST", "/v1/chat/completions")(stream_words(["fine"]))
    hosts[other].route("POST", "/redirected/chat/completions")(stream_words(["followed"]))
    priority = {redirecting: 0, other: 5}
    write_config(
        "[providers.exo]\nenabled = false\n"
        + "".join(f'[providers.{n}]\nurl = "{h.url}/v1"\npriority = {priority[n]}\n' for n, h in hosts.items())
    )
    cli("keys", "set", "openrouter", stdin=secret["openrouter"])  # from the keys file
    env = {"HF_TOKEN": secret["huggingface"]}  # from the environment

    proc = cli("chat", "-p", redirecting, "-p", other, "Hi", env=env)
    assert proc.exit_code == 0, proc.stderr
    assert proc.stdout.strip() == "fine"
    for name, host in hosts.items():
        assert host.requests, name
        seen = [r.headers.get("authorization") for r in host.requests]
        assert seen == [f"Bearer {secret[name]}"] * len(host.requests), name
        wrong = secret[other if name == redirecting else redirecting]
        assert all(wrong not in value for r in host.requests for value in r.headers.values())
    # The redirect target was never asked, with or without a key.
    assert all(not r.path.startswith("/redirected") for r in hosts[other].requests)


def test_a_key_echoed_back_by_its_provider_is_masked_in_every_command(cli, write_config, server):
    """Providers that quote the credential in their 401 text: no command may print it (one key in the keys
    file, one in the environment), whether as a table, `--json`, a notice or an error."""
    echoing = server()

    def echo_key(ex: Exchange) -> None:
        said = ex.request.headers.get("authorization", "")
        ex.reply(401, {"error": {"message": f"Incorrect API key provided: {said}", "code": 401}})

    for path in ("/api/v1/chat/completions", "/api/v1/models", "/api/v1/key", "/api/v1/auth/key"):
        echoing.route("POST" if path.endswith("completions") else "GET", path)(echo_key)
    for path in ("/v1/chat/completions", "/v1/models"):
        echoing.route("POST" if path.endswith("completions") else "GET", path)(echo_key)
    write_config(local_config(openrouter=f"{echoing.url}/api/v1", huggingface=f"{echoing.url}/v1"))
    from_env = "hf_canaryFromTheEnvironment0123456789"
    assert cli("keys", "set", "openrouter", stdin=CANARY).exit_code == 0
    env = {"HF_TOKEN": from_env}
    commands = [
        ["keys", "list"],
        ["keys", "list", "--json"],
        ["config", "show"],
        ["config", "show", "--json"],
        ["config", "get", "providers"],
        ["providers", "list"],
        ["providers", "list", "--json"],
        ["providers", "status"],
        ["providers", "status", "--json"],
        ["models", "--refresh"],
        ["models", "--json"],
        ["doctor"],
        ["doctor", "--json"],
        ["chat", "-v", "Hi"],
        ["chat", "--json", "Hi"],
        ["providers", "add", "other", "--url", f"{echoing.url}/v1", "--key-env", "HF_TOKEN", "--check"],
    ]
    for args in commands:
        proc = cli(*args, env=env)
        shown = proc.stdout + proc.stderr
        assert CANARY not in shown and from_env not in shown, args
        assert "Traceback" not in shown, args
    # The providers really were asked with the keys (so the check above means something) …
    sent = {r.headers.get("authorization") for r in echoing.requests}
    assert {f"Bearer {CANARY}", f"Bearer {from_env}"} <= sent
    # … and `keys get` is the one command that prints a key.
    assert cli("keys", "get", "huggingface", env=env).stdout == from_env + "\n"


def test_probes_never_follow_a_redirect_to_another_host(cli, write_config, server):
    """`providers status`, `models`, `doctor` and `providers add --check` send keys too: a 302 elsewhere is
    reported, never followed, so the other host receives nothing."""
    asked, elsewhere = server(), server()

    def redirect(ex: Exchange) -> None:
        ex.reply(302, "", headers={"Location": f"{elsewhere.url}{ex.request.path}"})

    for path in ("/api/v1/models", "/api/v1/key", "/api/v1/auth/key", "/v1/models"):
        asked.route("GET", path)(redirect)
    write_config(local_config(openrouter=f"{asked.url}/api/v1", huggingface=f"{asked.url}/v1"))
    env = {"OPENROUTER_API_KEY": CANARY, "HF_TOKEN": "hf_redirectcanary2222"}
    for args in (
        ["providers", "status"],
        ["models", "--refresh"],
        ["doctor"],
        ["providers", "add", "x", "--url", f"{asked.url}/v1", "--key-env", "HF_TOKEN", "--check"],
    ):
        proc = cli(*args, env=env)
        assert "Traceback" not in proc.stderr and CANARY not in proc.stdout + proc.stderr, args
    assert {r.headers.get("authorization") for r in asked.requests} >= {f"Bearer {CANARY}"}
    assert elsewhere.requests == []


def _on_a_terminal(args: list[str], typed: bytes) -> tuple[int, bytes]:
    """Run exobridge on a real pseudo-terminal, type `typed` once the prompt shows, return (exit code, screen)."""
    import pty

    command = [*exobridge_command(), *args]
    pid, fd = pty.fork()
    if pid == 0:  # child: stdin/stdout/stderr and /dev/tty are the pseudo-terminal
        os.execv(command[0], command)
    screen = b""
    sent = False
    while True:
        try:
            data = os.read(fd, 1024)
        except OSError:
            break
        if not data:
            break
        screen += data
        if not sent and b"(input hidden): " in screen:
            os.write(fd, typed)
            sent = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), screen


@pytest.mark.process  # a real terminal: only one shows the typed key is not echoed
def test_set_on_a_terminal_reads_a_hidden_prompt(write_config):
    code, screen = _on_a_terminal(["keys", "set", "openrouter"], CANARY.encode() + b"\r")
    assert code == 0, screen
    assert stored() == {"openrouter": CANARY}
    assert CANARY.encode() not in screen  # not echoed while typed, not printed after
    assert "sk-or-…WXYZ".encode() in screen
    # Ctrl-D at the prompt: nothing stored, and the error starts on its own line.
    code, screen = _on_a_terminal(["keys", "set", "huggingface"], b"\x04")
    assert code == 2
    assert b"(input hidden): \r\nexobridge: error: empty key" in screen
    assert stored() == {"openrouter": CANARY}
