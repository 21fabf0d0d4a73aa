"""Issue 12: `models load/unload` against simulated current-line and legacy Exo clusters (tests/exo_sim.py),
the output on a terminal, piped and with --json, and chat's `load` setting."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from exobridge.core import exo_loading, exo_state
from exobridge.core.exo_loading import Phase
from exobridge.render.io import IOStreams
from tests.conftest import exobridge_command
from tests.exo_sim import INSTANCE, SIZE, V1_ID, CurrentExo, LegacyExo, exo_config
from tests.loopback import closed_port


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    """In-process loads read progress every few ms (the pacing itself has its own test)."""
    monkeypatch.setattr(exo_loading, "FIRST_POLL", 0.005)
    monkeypatch.setattr(exo_loading, "POLL", 0.01)


@pytest.fixture
def exo(server, write_config):
    sim = CurrentExo(server())
    write_config(exo_config(sim.url))
    return sim


@pytest.fixture
def legacy(server, write_config):
    sim = LegacyExo(server())
    write_config(exo_config(sim.url))
    return sim


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# --- 1. models load, current line ------------------------------------------------------------------------


def test_load_checks_the_fit_places_follows_progress_and_ends_ready(exo, cli):
    result = cli("models", "load", "llama-3.2-3b")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [
        "checking where llama-3.2-3b fits",
        "placing llama-3.2-3b (1.9 GB, fits on 2 nodes, pipeline)",
        "downloading llama-3.2-3b to 2 nodes",
        "loading llama-3.2-3b on 2 nodes",
        "ready on 2 nodes: llama-3.2-3b (pipeline, 2 shards)",
    ]
    # previews before placement, and the placement Exo's previews chose, with the node's own id
    paths = [p.split("?")[0] for p in exo.server.paths()]
    assert paths.index("GET /instance/previews") < paths.index("POST /place_instance")
    assert exo.place_bodies == [{"model_id": V1_ID, "sharding": "Pipeline", "instance_meta": "MlxRing", "min_nodes": 2}]
    assert any(p.startswith("GET /instance/await?model_id=mlx-community%2FLlama") for p in exo.server.paths())


def test_json_prints_one_object_per_phase_and_the_outcome_last(exo, cli):
    result = cli("models", "load", "llama-3.2-3b", "--json")
    assert result.exit_code == 0, result.stderr
    objects = [json.loads(line) for line in lines(result.stdout)]
    assert [o["phase"] for o in objects] == ["checking", "placing", "downloading", "loading", "ready"]
    last = objects[-1]
    assert (last["error"], last["exit_code"], last["node_count"], last["shards"]) == (None, 0, 2, 2)
    assert last["model"] == V1_ID and last["size_bytes"] == SIZE
    downloading = objects[2]
    assert [n["node"] for n in downloading["nodes"]] == ["node-a", "node-b"]
    assert "exit_code" not in downloading


def test_a_model_already_placed_is_ready_without_placing_again(exo, cli):
    assert cli("models", "load", "llama-3.2-3b").exit_code == 0
    again = cli("models", "load", "llama-3.2-3b")
    assert again.exit_code == 0
    assert lines(again.stdout) == ["ready on 2 nodes: llama-3.2-3b (pipeline, 2 shards)"]
    assert len(exo.place_bodies) == 1


def test_a_model_that_does_not_fit_is_refused_with_the_sizes_before_anything_starts(server, write_config, cli):
    sim = CurrentExo(server(), fits=False)
    write_config(exo_config(sim.url))
    result = cli("models", "load", "llama-3.2-3b")
    assert result.exit_code == 3
    assert "llama-3.2-3b does not fit the cluster's memory now: needs 1.9 GB, 12.0 GB free, 2 nodes" in result.stderr
    assert "(Exo: No cycles found with sufficient memory)" in result.stderr
    assert not any(p.startswith("POST /place_instance") for p in sim.server.paths())


def test_an_accepted_placement_that_never_appears_fails_with_exit_3(server, write_config, cli):
    """A real node answers 200 "Command received." even when it cannot place (exo-v1-observed.md)."""
    sim = CurrentExo(server(), places=False)
    write_config(exo_config(sim.url))
    result = cli("models", "load", "llama-3.2-3b", "--json")
    assert result.exit_code == 3
    last = json.loads(lines(result.stdout)[-1])
    assert last["phase"] == "failed" and last["exit_code"] == 3
    assert "Exo accepted the placement of llama-3.2-3b but placed no instance" in last["error"]


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        (
            ["pending", "downloading:0.2", "download_failed"],
            "download of llama-3.2-3b failed on node-b: disk full on node-b",
        ),
        (["downloaded", "loading:3", "runner_failed"], "loading llama-3.2-3b failed: out of memory (Metal)"),
    ],
    ids=["download", "runner"],
)
def test_a_failed_download_or_runner_ends_with_exit_3_and_exos_reason(server, write_config, cli, steps, reason):
    sim = CurrentExo(server(), steps=steps)
    write_config(exo_config(sim.url))
    result = cli("models", "load", "llama-3.2-3b")
    assert result.exit_code == 3
    assert result.stderr.strip() == f"exobridge: error: {reason}"


def test_still_loading_at_the_timeout_is_exit_6_and_exo_keeps_going(server, write_config, cli):
    sim = CurrentExo(server(), steps=["downloading:0.1"])
    write_config(exo_config(sim.url))
    result = cli("models", "load", "llama-3.2-3b", "--timeout", "0.3")
    assert result.exit_code == 6
    assert "llama-3.2-3b is still downloading after 0.3 s; Exo keeps going" in result.stderr
    assert not any(p.startswith("DELETE") for p in sim.server.paths())


def test_an_unknown_model_is_exit_2(exo, cli):
    result = cli("models", "load", "no-such-model")
    assert result.exit_code == 2
    assert "unknown model no-such-model: exo does not list it" in result.stderr
    assert not any(p.startswith("POST") for p in exo.server.paths())


def test_an_unreachable_exo_is_exit_3(write_config, cli):
    write_config(exo_config(f"http://127.0.0.1:{closed_port()}"))
    result = cli("models", "load", "llama-3.2-3b", "--json")
    assert result.exit_code == 3
    assert "Exo unreachable" in result.json()["error"] and "connection refused" in result.json()["error"]


def test_several_exo_providers_need_a_pin_and_the_pin_picks_one(server, write_config, cli):
    first, second = CurrentExo(server()), CurrentExo(server())
    extra = f'\n[providers.lab]\nkind = "exo"\nurl = "{second.url}"\n'
    write_config(exo_config(first.url, extra=extra))
    ambiguous = cli("models", "load", "llama-3.2-3b")
    assert (
        ambiguous.exit_code == 2
        and "several Exo providers (exo, lab): name one, e.g. lab:llama-3.2-3b" in ambiguous.stderr
    )
    pinned = cli("models", "load", "lab:llama-3.2-3b")
    assert pinned.exit_code == 0, pinned.stderr
    assert second.place_bodies and not first.place_bodies
    assert cli("models", "load", "openrouter:x").exit_code == 2


def test_an_exo_id_works_as_well_as_a_logical_name(exo, cli):
    result = cli("models", "load", V1_ID)
    assert result.exit_code == 0 and exo.place_bodies[0]["model_id"] == V1_ID


# --- 1. legacy line ----------------------------------------------------------------------------------------


def test_legacy_downloads_with_progress_then_ready(legacy, cli):
    result = cli("models", "load", "llama-3.2-3b")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [
        "asking Exo to download llama-3.2-3b",
        "downloading llama-3.2-3b to 2 nodes (932 MB of 3.7 GB)",
        "downloaded on 2 nodes: llama-3.2-3b (legacy Exo loads it at the first request)",
    ]
    posts = [r for r in legacy.server.requests if r.method == "POST"]
    assert [(r.path, r.json()) for r in posts] == [("/download", {"model": "llama-3.2-3b"})]


def test_legacy_model_already_downloaded_is_ready_at_once(legacy, cli):
    legacy.downloaded = True
    result = cli("models", "load", "llama-3.2-3b", "--json")
    assert result.exit_code == 0
    assert [json.loads(line)["phase"] for line in lines(result.stdout)] == ["ready"]
    assert not legacy.started


def test_legacy_unknown_model_is_exit_2(server, write_config, cli):
    sim = LegacyExo(server(), model="llama-3.2-1b")
    write_config(exo_config(sim.url))
    result = cli("models", "load", "llama-3.2-3b")
    assert result.exit_code == 2 and "unknown model llama-3.2-3b" in result.stderr


def test_legacy_without_progress_reports_failure_after_the_place_wait(server, write_config):
    sim = LegacyExo(server(), steps=["nothing"])
    write_config(exo_config(sim.url))
    from exobridge.core import config

    target = exo_loading.resolve("llama-3.2-3b", config.load())
    with exo_loading.ExoLoader(target.provider, place_wait=0.2, poll=0.05) as loader:
        events = list(loader.load(target, timeout=10))
    assert events[-1].phase is Phase.FAILED
    assert "reported no progress within 0.2 s" in events[-1].message


# --- unload ------------------------------------------------------------------------------------------------


def test_unload_deletes_the_instance(exo, cli):
    assert cli("models", "load", "llama-3.2-3b").exit_code == 0
    result = cli("models", "unload", "llama-3.2-3b")
    assert result.exit_code == 0
    assert result.stdout == f"unloaded llama-3.2-3b from exo (instance {INSTANCE})\n"
    assert exo.deleted == [INSTANCE]
    again = cli("models", "unload", "llama-3.2-3b", "--json")
    assert again.exit_code == 0 and again.json()["done"] == ["llama-3.2-3b is not placed on exo: nothing to unload"]


def test_legacy_unload_deletes_files_only_when_confirmed(legacy, cli):
    piped = cli("models", "unload", "llama-3.2-3b")
    assert piped.exit_code == 2 and "add --yes to confirm" in piped.stderr and not legacy.deleted
    declined = cli("models", "unload", "llama-3.2-3b", io=IOStreams.test(stdin="n\n", tty=True))
    assert declined.exit_code == 0 and not legacy.deleted
    asked = cli("models", "unload", "llama-3.2-3b", io=IOStreams.test(stdin="y\n", tty=True))
    assert asked.exit_code == 0 and legacy.deleted == ["llama-3.2-3b"]
    assert "Delete the files of llama-3.2-3b on exo? [y/N]" in asked.stderr
    assert cli("models", "unload", "llama-3.2-3b", "--yes").exit_code == 0


# --- parsing Exo's shapes ---------------------------------------------------------------------------------


def test_download_progress_is_read_from_camel_case_and_snake_case_states():
    camel = {
        "downloads": {
            "n1": [{"DownloadOngoing": {"nodeId": "n1", "shardMetadata": {"PipelineShardMetadata": {
                "modelCard": {"modelId": "m"}}}, "downloadProgress": {"totalBytes": {"inBytes": 100},
                "downloadedBytes": {"inBytes": 40}, "speed": 10.0, "etaMs": 6000}}}],
            "n2": [{"DownloadCompleted": {"nodeId": "n2", "shardMetadata": {"PipelineShardMetadata": {
                "modelMeta": {"modelId": "m"}}}, "totalBytes": {"inBytes": 100}}}],
            "n3": [{"DownloadPending": {"nodeId": "n3", "shardMetadata": {"PipelineShardMetadata": {
                "modelCard": {"modelId": "other"}}}}}],
        }
    }  # fmt: skip
    progress = exo_state.downloads_of(camel, "m")
    assert [(p.node, p.downloaded, p.total, p.eta, p.done) for p in progress] == [
        ("n1", 40, 100, 6.0, False),
        ("n2", 100, 100, None, True),
    ]
    assignments = {
        "model_id": "m",
        "node_to_runner": {"a": "r1"},
        "runner_to_shard": {"r1": {"TensorShardMetadata": {}}},
    }
    snake = {"instances": {"i": {"MlxRingInstance": {"instance_id": "i", "shard_assignments": assignments}}}}
    (view,) = exo_state.instances_of(snake, "m")
    assert (view.instance_id, view.nodes, view.runners, view.sharding) == ("i", ["a"], ["r1"], "tensor")


def test_exos_error_envelopes_are_read():
    assert exo_state.error_message({"error": {"message": "No  instance"}}, b"") == "No instance"
    assert exo_state.error_message({"detail": "Not Found"}, b"") == "Not Found"
    assert exo_state.error_message({"error": "Invalid model: x"}, b"") == "Invalid model: x"
    assert exo_state.error_message(None, b"<html>oops</html>") == "<html>oops</html>"


# --- a terminal (in-process), Ctrl-C (a process) -----------------------------------------------------------


def _terminal_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(COLUMNS="100", TERM="xterm")
    return env


def test_a_terminal_shows_a_progress_bar_per_node_then_the_ready_line(exo, isolated, cli):
    io = IOStreams.test(tty=True, env=_terminal_env(), width=100)  # stdin, stdout and stderr a terminal
    result = cli("models", "load", "llama-3.2-3b", io=io)
    text = result.stdout + result.stderr
    assert result.exit_code == 0, text
    assert "node-a" in text and "node-b" in text
    assert "━" in text  # Rich's bar
    assert "52 MB/s" in text and "ETA 9s" in text  # Exo's own speed and ETA
    assert "ready on 2 nodes: llama-3.2-3b (pipeline, 2 shards)" in text


@pytest.mark.process  # a real SIGINT and the process's exit code
def test_ctrl_c_stops_waiting_and_says_exo_keeps_loading(server, write_config, isolated):
    sim = CurrentExo(server(), steps=["downloading:0.1"])
    write_config(exo_config(sim.url))
    proc = subprocess.Popen(
        [*exobridge_command(), "models", "load", "llama-3.2-3b"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    assert proc.stdout is not None
    seen = b""
    while b"downloading" not in seen:  # wait for the download phase on stdout: the load is running
        piece = proc.stdout.readline()
        assert piece, "the command ended before downloading"
        seen += piece
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    stderr = err.decode()
    assert proc.returncode == 130, stderr
    assert "stopped waiting; Exo keeps loading llama-3.2-3b" in stderr
    assert not any(p.startswith("DELETE /instance/") for p in sim.server.paths())


def test_ctrl_c_with_cancel_unloads_what_it_placed(server, write_config, isolated, cli):
    """In-process: a real SIGINT reaches the main thread once Exo reports the download (the process's exit
    code on Ctrl-C is test_ctrl_c_stops_waiting_and_says_exo_keeps_loading's)."""
    import threading

    sim = CurrentExo(server(), steps=["downloading:0.1"])
    main_thread = threading.main_thread().ident
    assert main_thread is not None
    interrupted = threading.Event()

    @sim.server.route("GET", "/state")
    def state(ex) -> None:
        sim._state(ex)
        if sim.placed and sim._current().startswith("downloading") and not interrupted.is_set():
            interrupted.set()
            signal.pthread_kill(main_thread, signal.SIGINT)  # Ctrl-C while the load is running

    write_config(exo_config(sim.url))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = cli("models", "load", "llama-3.2-3b", "--cancel")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert interrupted.is_set()
    assert result.exit_code == 130, result.stderr
    assert "cancelling: unloaded llama-3.2-3b from exo" in result.stderr
    assert any(p.startswith("DELETE /instance/") for p in sim.server.paths())


def test_pacing_starts_fast_and_backs_off_to_the_poll_interval(exo, monkeypatch):
    monkeypatch.setattr(exo_loading, "FIRST_POLL", 0.05)
    from exobridge.core import config

    target = exo_loading.resolve("llama-3.2-3b", config.load())
    waits: list[float] = []
    with exo_loading.ExoLoader(target.provider, poll=0.4) as loader:
        loader._stop.wait = lambda seconds: waits.append(round(seconds, 3)) or False  # type: ignore[method-assign]
        assert list(loader.load(target, timeout=60))[-1].phase is Phase.READY
    assert waits[:4] == [0.05, 0.1, 0.2, 0.4] and set(waits[4:]) <= {0.4}


# --- 2. chat when the model is not placed ----------------------------------------------------------------


def chat_config(exo_url: str, backup_url: str, load: str | None = None, extra: str = "") -> str:
    load_line = f'load = "{load}"\n' if load else ""
    return (
        'default_model = "llama-3.2-3b"\n\n'
        f'[providers.exo]\nkind = "exo"\nurl = "{exo_url}"\nfirst_token_timeout = 10\n{load_line}{extra}\n'
        f'[providers.openrouter]\nurl = "{backup_url}"\nkey_env = "TEST_OR_KEY"\n\n'
        "[providers.huggingface]\nenabled = false\n"
    )


@pytest.fixture
def not_placed(server, backup, write_config):
    def make(load: str | None, extra: str = "") -> CurrentExo:
        sim = CurrentExo(server())
        write_config(chat_config(sim.url, backup.url, load, extra))
        return sim

    return make


ENV = {"TEST_OR_KEY": "sk-or-v1-test-key-0000"}


def test_auto_loads_with_progress_on_stderr_then_answers_from_exo(not_placed, backup, cli):
    sim = not_placed("auto")
    result = cli("chat", "Hi", env=ENV)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Hello from Exo")
    assert "placing llama-3.2-3b (1.9 GB, fits on 2 nodes, pipeline)" in result.stderr
    assert "ready on 2 nodes: llama-3.2-3b (pipeline, 2 shards)" in result.stderr
    assert sim.place_bodies and not backup.requests


def test_auto_that_cannot_load_says_so_and_fails_over(server, backup, write_config, cli):
    sim = CurrentExo(server(), fits=False)
    write_config(chat_config(sim.url, backup.url, "auto"))
    result = cli("chat", "Hi", env=ENV)
    assert result.exit_code == 0 and result.stdout.startswith("from backup")
    assert "could not load llama-3.2-3b on exo: llama-3.2-3b does not fit" in result.stderr


def test_ask_when_piped_fails_over_with_a_notice_naming_models_load(not_placed, backup, cli):
    sim = not_placed(None)  # ask is the default
    result = cli("chat", "Hi", env=ENV)
    assert result.exit_code == 0 and result.stdout.startswith("from backup")
    assert (
        "llama-3.2-3b is not loaded on your Exo cluster (exo); `exobridge models load llama-3.2-3b` "
        "would keep it local next time"
    ) in result.stderr
    assert not sim.place_bodies


def test_never_fails_over_silently_as_before(not_placed, backup, cli):
    sim = not_placed("never")
    result = cli("chat", "Hi", env=ENV)
    assert result.exit_code == 0 and result.stdout.startswith("from backup")
    assert "models load" not in result.stderr and not sim.place_bodies


QUESTION = (
    "llama-3.2-3b is not loaded on your Exo cluster (1.9 GB, fits on 2 nodes). Load it now [Y], "
    "use OpenRouter this time [o], or never ask for this model [n]? "
)


@pytest.mark.parametrize("answer", ["\n", "y\n"], ids=["enter", "y"])
def test_ask_on_a_terminal_loads_on_yes(not_placed, backup, cli, answer):
    sim = not_placed("ask")
    result = cli("chat", "Hi", env=ENV, io=IOStreams.test(stdin=answer, tty=True))
    assert result.exit_code == 0, result.stderr
    assert QUESTION in result.stderr
    assert "Hello from Exo" in result.stdout and sim.place_bodies and not backup.requests
    assert "ready on 2 nodes: llama-3.2-3b" in result.stderr


def test_ask_on_a_terminal_uses_the_next_provider_this_time_on_o(not_placed, backup, cli):
    sim = not_placed("ask")
    result = cli("chat", "Hi", env=ENV, io=IOStreams.test(stdin="o\n", tty=True))
    assert result.exit_code == 0 and "from backup" in result.stdout
    assert QUESTION in result.stderr and not sim.place_bodies
    again = cli("chat", "Hi", env=ENV, io=IOStreams.test(stdin="o\n", tty=True))
    assert QUESTION in again.stderr  # asked again next time


def test_ask_on_a_terminal_remembers_never_in_the_config(not_placed, backup, cli):
    sim = not_placed("ask")
    result = cli("chat", "Hi", env=ENV, io=IOStreams.test(stdin="n\n", tty=True))
    assert result.exit_code == 0 and "from backup" in result.stdout
    assert "will not ask again for llama-3.2-3b (providers.exo.load_never" in result.stderr
    from exobridge.core import config

    assert config.load().providers["exo"].load_never == ("llama-3.2-3b",)
    again = cli("chat", "Hi", env=ENV, io=IOStreams.test(stdin="", tty=True))
    assert "Load it now" not in again.stderr and "from backup" in again.stdout and not sim.place_bodies


# --- 3. seeing it: what `exobridge models` can show per Exo provider --------------------------------------


def test_the_cluster_marks_placed_downloaded_and_fitting_models(exo):
    from exobridge.core.providers.exo import Exo

    cards = {"object": "list", "data": [
        {"id": V1_ID, "hugging_face_id": V1_ID, "storage_size_megabytes": 1777},
        {"id": "mlx-community/Meta-Llama-3.1-70B-Instruct-4bit", "storage_size_megabytes": 38000},
        {"id": "no-size"},
    ]}  # fmt: skip
    entries = Exo.parse_models(cards)
    assert entries is not None and entries[0]["size_bytes"] == 1777 * 1024 * 1024 and "size_bytes" not in entries[2]
    exo.placed, exo.steps = True, ["ready"]
    exo_state.mark_cluster(exo.snapshot(), entries)
    assert [(e["placed_nodes"], e["downloaded_nodes"], e.get("fits")) for e in entries] == [
        (2, 2, True),  # placed on both nodes, files on both, 1.9 GB ≤ 12 GB free
        (0, 0, False),  # 40 GB does not fit 12 GB
        (0, 0, None),  # no size: unknown
    ]
    exo.placed = False
    exo_state.mark_cluster(exo.snapshot(), entries)
    assert entries[0]["placed_nodes"] == 0


def test_a_load_in_progress_is_summarised_for_providers_status(exo):
    exo.placed, exo.steps = True, ["downloading:0.5", "loading:7", "ready", "ready"]
    downloading, loading, ready = (exo_state.loads_in_progress(exo.snapshot()) for _ in range(3))
    half = SIZE // 2
    assert downloading == [
        {"model": V1_ID, "phase": "downloading", "nodes": 2, "downloaded_bytes": half // 2 * 2,
         "total_bytes": half * 2, "layers_loaded": None, "layers_total": None, "error": None}
    ]  # fmt: skip
    assert (loading[0]["phase"], loading[0]["layers_loaded"], loading[0]["layers_total"]) == ("loading", 14, 56)
    assert ready == []


def test_models_shows_the_cluster_marks_in_one_word():
    from exobridge.render.models import cluster_word

    assert cluster_word({"id": "m", "placed": True}) is None  # a list without marks: the old yes/no
    marks = [
        {"placed_nodes": 2, "downloaded_nodes": 2, "fits": True},
        {"placed_nodes": 0, "downloaded_nodes": 1, "fits": True},
        {"placed_nodes": 0, "downloaded_nodes": 0, "fits": True},
        {"placed_nodes": 0, "downloaded_nodes": 0, "fits": False},
        {"placed_nodes": 0, "downloaded_nodes": 0},
    ]
    assert [cluster_word(m) for m in marks] == ["2 nodes", "downloaded", "fits", "too big", "no"]


def test_a_build_without_previews_places_with_exos_defaults_and_says_so(exo, cli):
    del exo.server.routes[("GET", "/instance/previews")]  # answered 404 {"detail": "Not Found"} like old builds
    result = cli("models", "load", "llama-3.2-3b")
    assert result.exit_code == 0, result.stderr
    assert "placing llama-3.2-3b (1.9 GB, this Exo cannot preview placements: placing anyway)" in result.stdout
    assert exo.place_bodies == [{"model_id": V1_ID, "sharding": "Pipeline", "instance_meta": "MlxRing", "min_nodes": 1}]


def test_legacy_without_a_progress_list_asks_the_modelpool(server, write_config):
    sim = LegacyExo(server())
    del sim.server.routes[("GET", "/v1/download/progress")]
    pool_reads = []

    def modelpool(ex):
        pool_reads.append(1)
        ex.start_stream()
        ex.event({sim.model: {"downloaded": len(pool_reads) > 1}})
        ex.event("[DONE]")
        ex.end()

    sim.server.route("GET", "/modelpool")(modelpool)
    write_config(exo_config(sim.url))
    from exobridge.core import config

    target = exo_loading.resolve("llama-3.2-3b", config.load())
    with exo_loading.ExoLoader(target.provider, place_wait=0.05, poll=0.02) as loader:
        events = list(loader.load(target, timeout=10))
    assert [e.phase for e in events][-1] is Phase.READY and len(pool_reads) == 2


def test_a_disabled_exo_provider_is_named(write_config, cli):
    write_config(exo_config("http://127.0.0.1:9").replace('kind = "exo"', 'kind = "exo"\nenabled = false'))
    result = cli("models", "load", "llama-3.2-3b")
    assert (
        result.exit_code == 2 and "the Exo provider exo is disabled (exobridge providers enable exo)" in result.stderr
    )


def test_a_cluster_without_nodes_that_can_take_it_is_refused_with_the_size(server, write_config, cli):
    """What a real node without a worker answers: `{"previews": []}` (exo-v1-observed.md)."""
    sim = CurrentExo(server(), nodes=(), fits=False)
    write_config(exo_config(sim.url))
    result = cli("models", "load", "llama-3.2-3b")
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "exobridge: error: llama-3.2-3b does not fit the cluster's memory now: needs 1.9 GB, 0 nodes"
    )
    assert not sim.place_bodies


def test_without_a_model_list_a_current_node_is_sent_the_repo_id(exo, cli):
    del exo.server.routes[("GET", "/v1/models")]
    assert cli("models", "load", "llama-3.2-3b").exit_code == 0
    assert exo.place_bodies[0]["model_id"] == V1_ID


def test_the_load_settings_are_checked_like_every_config_value(write_config, cli):
    write_config(exo_config("http://127.0.0.1:9"))
    assert cli("config", "set", "providers.exo.load", "auto").exit_code == 0
    wrong = cli("config", "set", "providers.exo.load", "sometimes")
    assert wrong.exit_code == 2 and "expected one of ask, auto, never, got 'sometimes'" in wrong.stderr
    assert cli("config", "set", "providers.exo.load_never", "llama-3.2-3b, qwen-2.5-7b").exit_code == 0
    from exobridge.core import config

    exo = config.load().providers["exo"]
    assert (exo.load, exo.load_never) == ("auto", ("llama-3.2-3b", "qwen-2.5-7b"))
    write_config(exo_config("http://127.0.0.1:9", load="later"))
    broken = cli("models", "load", "llama-3.2-3b")
    assert broken.exit_code == 4 and "providers.exo.load: expected one of ask, auto, never" in broken.stderr


def test_ctrl_c_while_chat_loads_stops_the_bars_and_says_exo_keeps_loading(not_placed, backup, cli, monkeypatch):
    from exobridge.render.exo_loading import LoadView

    shown = LoadView.show

    def interrupt_at_download(self, event):
        shown(self, event)
        if event.phase is Phase.DOWNLOADING:
            raise KeyboardInterrupt

    monkeypatch.setattr(LoadView, "show", interrupt_at_download)
    sim = not_placed("auto")
    result = cli("chat", "Hi", env=ENV, io=IOStreams.test(tty=True))
    assert result.exit_code == 130
    assert "stopped waiting; Exo keeps loading llama-3.2-3b" in result.stderr
    assert "\x1b[?25h" in result.stderr  # the bars stopped: the cursor is back
    assert not backup.requests and not any(p.startswith("DELETE") for p in sim.server.paths())


def test_providers_status_details_show_a_load_in_progress(exo):
    from types import SimpleNamespace

    from exobridge.render.providers import details

    exo.placed, exo.steps = True, ["downloading:0.4", "loading:7", "download_failed"]
    texts = []
    for _ in range(3):
        loads = exo_state.loads_in_progress(exo.snapshot())
        result = SimpleNamespace(
            kind="exo", api_line="v1", nodes=2, models_ready=1, models_ready_note=None, loading=loads
        )
        texts.append(details(result))
    assert texts == [
        f"v1 API · 2 nodes · 1 model ready · loading {V1_ID} (downloading 40% of 1.9 GB)",
        f"v1 API · 2 nodes · 1 model ready · loading {V1_ID} (14/56 layers)",
        f"v1 API · 2 nodes · 1 model ready · loading {V1_ID} failed: disk full on node-b",
    ]


def test_providers_status_and_models_show_a_load_in_progress_end_to_end(exo, cli):
    exo.placed, exo.steps = True, ["downloading:0.4"]
    status = cli("providers", "status", "--json")
    [node] = [n for n in status.json()["nodes"] if n["provider"] == "exo"]
    assert [(load["model"], load["phase"]) for load in node["loading"]] == [(V1_ID, "downloading")]
    shown = cli("providers", "status")
    assert f"loading {V1_ID} (downloading 40% of 1.9 GB)" in shown.stdout
    listed = cli("models", "--provider", "exo", "--refresh", "--json")
    entry = next(m for p in listed.json()["providers"] for m in p["models"] if m["id"] == V1_ID)
    assert entry["placed"] is True and entry["placed_nodes"] == 2
