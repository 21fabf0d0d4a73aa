"""Simulated Exo clusters on loopback, for `models load/unload` and chat's `load` setting.

`CurrentExo` speaks the current line's API with the shapes read from exo-explore/exo (docs/exo-api.md):
`/node_id`, `/v1/models`, `/state` (camelCase, tagged unions), `/instance/previews`, `/place_instance`,
`/instance/await` (SSE), `DELETE /instance/{id}` and `/v1/chat/completions` (404 "No instance found" until
the model is placed and its runners are ready).

Progress steps over time without sleeping: every `GET /state` after the placement moves one step along
`steps` (and stays on the last one), so a test decides exactly what the loader sees, in order.
Step names: "pending", "downloading:<fraction>", "downloaded", "loading:<layers>", "ready",
"download_failed", "runner_failed".

`LegacyExo` speaks the legacy line: `/healthcheck`, `POST /download`, `/v1/download/progress` (steps the same
way, per GET: "downloading:<fraction>", "gone" = finished, anything else = no progress reported),
`/modelpool` (SSE), `DELETE /models/{name}`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.loopback import Exchange, LoopbackServer, completion

V1_ID = "mlx-community/Llama-3.2-3B-Instruct-4bit"
SIZE = 1_863_319_552
INSTANCE = "inst-1"


def _memory(n: int) -> dict[str, int]:
    return {"inBytes": n}


def _card(model: str) -> dict[str, Any]:
    return {"modelId": model, "storageSize": _memory(SIZE), "nLayers": 28}


def _shard(model: str, rank: int, world: int) -> dict[str, Any]:
    return {
        "PipelineShardMetadata": {
            "modelCard": _card(model),
            "deviceRank": rank,
            "worldSize": world,
            "startLayer": rank * 14,
            "endLayer": (rank + 1) * 14,
            "nLayers": 28,
        }
    }


@dataclass
class CurrentExo:
    server: LoopbackServer
    model: str = V1_ID
    nodes: tuple[str, ...] = ("node-a", "node-b")
    fits: bool = True
    places: bool = True  # False: accept the placement with 200, as a real node does, and never place
    steps: list[str] = field(
        default_factory=lambda: ["pending", "downloading:0.5", "downloaded", "loading:14", "ready"]
    )
    placed: bool = False
    step: int = 0
    place_bodies: list[Any] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    state_reads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        routes = {
            ("GET", "/node_id"): lambda ex: ex.reply(200, json.dumps(self.nodes[0] if self.nodes else "solo")),
            ("GET", "/v1/models"): self._models,
            ("GET", "/state"): self._state,
            ("GET", "/instance/previews"): self._previews,
            ("POST", "/place_instance"): self._place,
            ("GET", "/instance/await"): self._await,
            ("DELETE", f"/instance/{INSTANCE}"): self._delete,
            ("POST", "/v1/chat/completions"): self._chat,
        }
        for (method, path), handler in routes.items():
            self.server.route(method, path)(handler)

    @property
    def url(self) -> str:
        return self.server.url

    # --- state ---
    def _current(self) -> str:
        return self.steps[min(self.step, len(self.steps) - 1)]

    def ready(self) -> bool:
        return self.placed and self._current() == "ready"

    def _instance(self, snake: bool = False) -> dict[str, Any]:
        runners = {f"runner-{i}": _shard(self.model, i, len(self.nodes)) for i in range(len(self.nodes))}
        inner = {
            "instanceId": INSTANCE,
            "shardAssignments": {
                "modelId": self.model,
                "runnerToShard": runners,
                "nodeToRunner": {node: f"runner-{i}" for i, node in enumerate(self.nodes)},
            },
            "hosts": [],
        }
        if snake:  # what /instance/await sends: model_dump_json() without aliases
            inner = {
                "instance_id": INSTANCE,
                "shard_assignments": {
                    "model_id": self.model,
                    "runner_to_shard": runners,
                    "node_to_runner": inner["shardAssignments"]["nodeToRunner"],
                },
                "hosts": [],
            }
        return {"MlxRingInstance": inner}

    def _downloads(self, step: str) -> dict[str, list[Any]]:
        result: dict[str, list[Any]] = {}
        for rank, node in enumerate(self.nodes):
            base = {"nodeId": node, "shardMetadata": _shard(self.model, rank, len(self.nodes))}
            half = SIZE // len(self.nodes)
            if step == "pending":
                entry = {"DownloadPending": base}
            elif step.startswith("downloading:"):
                fraction = float(step.split(":")[1])
                progress = {
                    "totalBytes": _memory(half),
                    "downloadedBytes": _memory(int(half * fraction)),
                    "downloadedBytesThisSession": _memory(int(half * fraction)),
                    "completedFiles": 1,
                    "totalFiles": 3,
                    "speed": 52_000_000.0,
                    "etaMs": 9000,
                    "files": {},
                }
                entry = {"DownloadOngoing": {**base, "downloadProgress": progress}}
            elif step == "download_failed" and rank == 1:
                entry = {"DownloadFailed": {**base, "errorMessage": "disk full on node-b"}}
            else:
                entry = {"DownloadCompleted": {**base, "totalBytes": _memory(half)}}
            result[node] = [entry]
        return result

    def _runners(self, step: str) -> dict[str, Any]:
        runners: dict[str, Any] = {}
        for i in range(len(self.nodes)):
            if step.startswith("loading:"):
                runners[f"runner-{i}"] = {"RunnerLoading": {"layersLoaded": int(step.split(":")[1]), "totalLayers": 28}}
            elif step == "ready":
                runners[f"runner-{i}"] = {"RunnerReady": {}}
            elif step == "runner_failed":
                runners[f"runner-{i}"] = {"RunnerFailed": {"errorMessage": "out of memory (Metal)", "diagnostics": []}}
            else:
                runners[f"runner-{i}"] = {"RunnerIdle": {}}
        return runners

    def snapshot(self, advance: bool = True) -> dict[str, Any]:
        with self.lock:
            self.state_reads += 1
            state: dict[str, Any] = {
                "instances": {},
                "runners": {},
                "downloads": {node: [] for node in self.nodes},
                "tasks": {},
                "topology": {"nodes": list(self.nodes), "connections": {}},
                "nodeMemory": {
                    node: {"ramTotal": _memory(16 * 10**9), "ramAvailable": _memory(6 * 10**9)} for node in self.nodes
                },
                "lastEventAppliedIdx": self.state_reads,
            }
            if self.placed:
                step = self._current()
                state["instances"] = {INSTANCE: self._instance()}
                state["downloads"] = self._downloads(step)
                state["runners"] = self._runners(step)
                if advance:
                    self.step += 1
            return state

    # --- routes ---
    def _models(self, ex: Exchange) -> None:
        cards = [
            {"id": self.model, "object": "model", "owned_by": "exo", "hugging_face_id": self.model,
             "name": "llama-3.2-3b", "storage_size_megabytes": SIZE // (1024 * 1024), "context_length": 131072},
            {"id": "mlx-community/Llama-3.2-1B-Instruct-4bit", "object": "model", "owned_by": "exo",
             "hugging_face_id": "mlx-community/Llama-3.2-1B-Instruct-4bit", "name": "llama-3.2-1b",
             "storage_size_megabytes": 696},
        ]  # fmt: skip
        ex.reply(200, {"object": "list", "data": cards})

    def _state(self, ex: Exchange) -> None:
        ex.reply(200, self.snapshot())

    def _previews(self, ex: Exchange) -> None:
        query = parse_qs(urlsplit(ex.request.path).query)
        model = query.get("model_id", [""])[0]
        if model != self.model and model != "mlx-community/Llama-3.2-1B-Instruct-4bit":
            error = {"message": f"Failed to load model card: no card for {model}", "type": "Bad Request",
                     "param": None, "code": 400}  # fmt: skip
            ex.reply(400, {"error": error})
            return
        previews = []
        for sharding in ("Pipeline", "Tensor") if self.nodes else ():  # no node: {"previews": []} (observed)
            preview = {"model_id": model, "sharding": sharding, "instance_meta": "MlxRing", "instance": None,
                       "memory_delta_by_node": None, "error": "No cycles found with sufficient memory"}  # fmt: skip
            if self.fits and sharding == "Pipeline":
                half = SIZE // len(self.nodes)
                preview.update(
                    instance=self._instance(), memory_delta_by_node={n: half for n in self.nodes}, error=None
                )
            previews.append(preview)
        ex.reply(200, {"previews": previews})

    def _place(self, ex: Exchange) -> None:
        body = ex.request.json()
        self.place_bodies.append(body)
        if self.places:
            with self.lock:
                self.placed = True
                self.step = 0
        ex.reply(200, {"message": "Command received.", "command_id": "cmd-1", "model_card": _card(body["model_id"])})

    def _await(self, ex: Exchange) -> None:
        ex.start_stream()
        ex.comment("keep-alive")
        if self.placed:
            ex.event({"type": "ready", "instance": self._instance(snake=True)})
        else:
            ex.event({"type": "timeout", "message": f"No instance found for model {self.model}"})
        ex.end()

    def _delete(self, ex: Exchange) -> None:
        if not self.placed:
            ex.reply(404, {"error": {"message": "Instance not found", "type": "Not Found", "param": None, "code": 404}})
            return
        with self.lock:
            self.placed = False
            self.deleted.append(INSTANCE)
        ex.reply(200, {"message": "Command received.", "command_id": "cmd-2", "instance_id": INSTANCE})

    def _chat(self, ex: Exchange) -> None:
        body = ex.request.json()
        if not self.ready() or body.get("model") != self.model:
            message = f"No instance found for model {body.get('model')}"
            ex.reply(404, {"error": {"message": message, "type": "Not Found", "param": None, "code": 404}})
            return
        ex.reply(200, completion("Hello from Exo", model=self.model))


@dataclass
class LegacyExo:
    server: LoopbackServer
    model: str = "llama-3.2-3b"
    nodes: tuple[str, ...] = ("legacy-a", "legacy-b")
    steps: list[str] = field(default_factory=lambda: ["downloading:0.25", "downloading:0.75", "gone"])
    downloaded: bool = False
    started: bool = False
    step: int = 0
    deleted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.route("GET", "/node_id")(lambda ex: ex.reply(404, {"detail": "Not Found"}))
        self.server.route("GET", "/healthcheck")(lambda ex: ex.reply(200, {"status": "ok"}))
        self.server.route("POST", "/download")(self._download)
        self.server.route("GET", "/v1/download/progress")(self._progress)
        self.server.route("GET", "/modelpool")(self._modelpool)
        self.server.route("DELETE", f"/models/{self.model}")(self._delete)
        self.server.route("GET", "/v1/models")(
            lambda ex: ex.reply(200, {"object": "list", "data": [{"id": self.model, "object": "model", "ready": True}]})
        )

    @property
    def url(self) -> str:
        return self.server.url

    def _download(self, ex: Exchange) -> None:
        model = ex.request.json().get("model")
        if model != self.model:
            ex.reply(400, {"error": f"Invalid model: {model}. Supported models: ['{self.model}']"})
            return
        self.started = True
        ex.reply(200, {"status": "success", "message": f"Download started for model: {model}"})

    def _progress(self, ex: Exchange) -> None:
        data: dict[str, Any] = {}
        if self.started:
            step = self.steps[min(self.step, len(self.steps) - 1)]
            self.step += 1
            if step.startswith("downloading:"):
                fraction = float(step.split(":")[1])
                for node in self.nodes:
                    data[node] = {
                        "repo_id": "mlx-community/Llama-3.2-3B-Instruct-4bit",
                        "repo_revision": "main",
                        "shard": {"model_id": self.model, "start_layer": 0, "end_layer": 27, "n_layers": 28},
                        "completed_files": 1,
                        "total_files": 4,
                        "downloaded_bytes": int(SIZE * fraction),
                        "downloaded_bytes_this_session": int(SIZE * fraction),
                        "total_bytes": SIZE,
                        "overall_speed": 40_000_000,
                        "overall_eta": 12.5,
                        "file_progress": {},
                        "status": "in_progress",
                    }
            elif step == "gone":  # the download finished: it leaves the progress list
                self.downloaded = True
        ex.reply(200, data)

    def _modelpool(self, ex: Exchange) -> None:
        ex.start_stream()
        done = self.downloaded
        ex.event({self.model: {"downloaded": done, "download_percentage": 100 if done else 0,
                               "total_size": SIZE, "total_downloaded": SIZE if done else 0}})  # fmt: skip
        ex.event("[DONE]")
        ex.end()

    def _delete(self, ex: Exchange) -> None:
        self.deleted.append(self.model)
        ex.reply(200, {"status": "success", "message": f"Model {self.model} deleted successfully"})


def exo_config(url: str, load: str | None = None, extra: str = "") -> str:
    """A config with one Exo provider at `url` (and no cloud provider enabled)."""
    load_line = f'load = "{load}"\n' if load else ""
    return (
        'default_model = "llama-3.2-3b"\n\n'
        f'[providers.exo]\nkind = "exo"\nurl = "{url}"\nfirst_token_timeout = 10\n{load_line}\n'
        "[providers.openrouter]\nenabled = false\n\n[providers.huggingface]\nenabled = false\n" + extra
    )
