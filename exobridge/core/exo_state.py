"""What an Exo cluster's `GET /state` says, read into plain views: which instances exist, what each node has
downloaded, how far runners are, how much memory is free. Pure functions of data already read (no HTTP here):
core/exo_loading.py follows a load with them, `exobridge models` marks its list (`mark_cluster`), `providers
status` shows what is loading (`loads_in_progress`).

Exo's JSON is camelCase with snake_case in older builds (`field_of` reads either), and every union member is
wrapped in a one-key dict named after its class (`untag`); shapes in docs/exo-api.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class NodeProgress:
    """One node's download of the model: bytes, speed (bytes/s), ETA (s); `failed` is Exo's reason."""

    node: str
    downloaded: int = 0
    total: int = 0
    speed: float | None = None
    eta: float | None = None
    done: bool = False
    failed: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "downloaded_bytes": self.downloaded,
            "total_bytes": self.total,
            "speed_bytes_per_s": self.speed,
            "eta_s": self.eta,
            "done": self.done,
            "failed": self.failed,
        }


def field_of(obj: Any, *names: str) -> Any:
    """The first present key of `names` (camelCase and snake_case spellings of one field)."""
    if not isinstance(obj, dict):
        return None
    for name in names:
        if name in obj:
            return obj[name]
    return None


def untag(obj: Any) -> tuple[str | None, Any]:
    """Exo wraps a union member in a one-key dict named after its class: (`"DownloadOngoing"`, inner)."""
    if isinstance(obj, dict) and len(obj) == 1:
        ((tag, inner),) = obj.items()
        if isinstance(inner, dict) and tag[:1].isupper():
            return tag, inner
    return None, obj


def byte_count(value: Any) -> int | None:
    """A `Memory` (`{"inBytes": n}`) or a plain number of bytes."""
    inner = field_of(value, "inBytes", "in_bytes")
    if inner is not None:
        value = inner
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def number_of(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _model_of_shard(shard: Any) -> str | None:
    _, inner = untag(shard)
    card = field_of(inner, "modelCard", "model_card", "modelMeta", "model_meta")
    model = field_of(card, "modelId", "model_id")
    if model is None:
        model = field_of(inner, "modelId", "model_id")
    return model if isinstance(model, str) else None


@dataclass
class InstanceView:
    """One placed instance of the model, as /state (or the await message) describes it."""

    instance_id: str
    nodes: list[str]
    runners: list[str]
    sharding: str | None


def instance_view(instance_id: str | None, wrapped: Any) -> InstanceView | None:
    _, inner = untag(wrapped)
    if not isinstance(inner, dict):
        return None
    assignments = field_of(inner, "shardAssignments", "shard_assignments")
    if not isinstance(assignments, dict):
        return None
    instance_id = instance_id or field_of(inner, "instanceId", "instance_id")
    node_to_runner = field_of(assignments, "nodeToRunner", "node_to_runner")
    runner_to_shard = field_of(assignments, "runnerToShard", "runner_to_shard")
    nodes: list[str] = []
    runners: list[str] = []
    shard_tags: list[str] = []
    if isinstance(node_to_runner, dict):
        nodes = [str(n) for n in node_to_runner]
        runners = [str(r) for r in node_to_runner.values()]
    if isinstance(runner_to_shard, dict):
        runners = runners or [str(r) for r in runner_to_shard]
        shard_tags = [t for t in (untag(s)[0] for s in runner_to_shard.values()) if t]
    shards = field_of(assignments, "shards")  # newer builds: [[node_id, runner_id, shard], …]
    if isinstance(shards, list):
        for entry in shards:
            if isinstance(entry, list) and len(entry) == 3:
                nodes.append(str(entry[0]))
                runners.append(str(entry[1]))
                tag = untag(entry[2])[0]
                if tag:
                    shard_tags.append(tag)
    sharding = None
    if shard_tags:
        sharding = shard_tags[0].removesuffix("ShardMetadata").lower() or None
    return InstanceView(str(instance_id or "?"), list(dict.fromkeys(nodes)), list(dict.fromkeys(runners)), sharding)


def instances_of(state: Any, model: str) -> list[InstanceView]:
    """The instances in /state serving `model` (exactly the id Exo compares chat requests with)."""
    found: list[InstanceView] = []
    instances = field_of(state, "instances")
    if not isinstance(instances, dict):
        return found
    for instance_id, wrapped in instances.items():
        _, inner = untag(wrapped)
        assignments = field_of(inner, "shardAssignments", "shard_assignments")
        if field_of(assignments, "modelId", "model_id") == model:
            view = instance_view(str(instance_id), wrapped)
            if view is not None:
                found.append(view)
    return found


def downloads_of(state: Any, model: str, nodes: list[str] | None = None) -> list[NodeProgress]:
    """Per-node download progress of `model` from /state `downloads` ({node: [tagged progress, …]})."""
    result: list[NodeProgress] = []
    downloads = field_of(state, "downloads")
    if not isinstance(downloads, dict):
        return result
    for node, entries in downloads.items():
        if nodes and str(node) not in nodes:
            continue
        for entry in entries if isinstance(entries, list) else []:
            tag, inner = untag(entry)
            if _model_of_shard(field_of(inner, "shardMetadata", "shard_metadata")) != model:
                continue
            progress = NodeProgress(str(node))
            if tag == "DownloadCompleted":
                progress.total = progress.downloaded = byte_count(field_of(inner, "totalBytes", "total_bytes")) or 0
                progress.done = True
            elif tag == "DownloadFailed":
                progress.failed = str(field_of(inner, "errorMessage", "error_message") or "download failed")
            elif tag == "DownloadOngoing":
                data = field_of(inner, "downloadProgress", "download_progress")
                progress.downloaded = byte_count(field_of(data, "downloadedBytes", "downloaded_bytes")) or 0
                progress.total = byte_count(field_of(data, "totalBytes", "total_bytes")) or 0
                progress.speed = number_of(field_of(data, "speed"))
                eta_ms = number_of(field_of(data, "etaMs", "eta_ms"))
                progress.eta = eta_ms / 1000 if eta_ms is not None else None
            result.append(progress)
    return result


@dataclass
class RunnerSummary:
    ready: int = 0
    loading: int = 0
    failed: str | None = None
    layers_loaded: int = 0
    layers_total: int = 0
    known: int = 0


READY_RUNNERS = frozenset({"RunnerReady", "RunnerRunning", "LoadedRunnerStatus", "ReadyRunnerStatus"})


def runners_of(state: Any, runner_ids: list[str]) -> RunnerSummary:
    summary = RunnerSummary()
    runners = field_of(state, "runners")
    if not isinstance(runners, dict):
        return summary
    for runner_id in runner_ids:
        if runner_id not in runners:
            continue
        tag, inner = untag(runners[runner_id])
        summary.known += 1
        if tag in READY_RUNNERS:
            summary.ready += 1
        elif tag in ("RunnerFailed", "FailedRunnerStatus"):
            summary.failed = str(field_of(inner, "errorMessage", "error_message") or "a runner failed")
        elif tag == "RunnerLoading":
            summary.loading += 1
            summary.layers_loaded += int(number_of(field_of(inner, "layersLoaded", "layers_loaded")) or 0)
            summary.layers_total += int(number_of(field_of(inner, "totalLayers", "total_layers")) or 0)
    return summary


def free_memory(state: Any) -> int | None:
    """The cluster's available RAM from /state `nodeMemory` (sum over nodes), when it says."""
    memory = field_of(state, "nodeMemory", "node_memory")
    if not isinstance(memory, dict) or not memory:
        return None
    total = 0
    for entry in memory.values():
        value = byte_count(field_of(entry, "ramAvailable", "ram_available"))
        if value is None:
            return None
        total += value
    return total


def downloaded_nodes(state: Any) -> dict[str, list[str]]:
    """Model id → the nodes whose /state `downloads` say `DownloadCompleted` for it."""
    found: dict[str, list[str]] = {}
    downloads = field_of(state, "downloads")
    if not isinstance(downloads, dict):
        return found
    for node, entries in downloads.items():
        for entry in entries if isinstance(entries, list) else []:
            tag, inner = untag(entry)
            model = _model_of_shard(field_of(inner, "shardMetadata", "shard_metadata"))
            if tag == "DownloadCompleted" and model and str(node) not in found.setdefault(model, []):
                found[model].append(str(node))
    return found


def mark_cluster(state: Any, entries: list[dict[str, Any]]) -> None:
    """Mark each model-list entry of an Exo v1 cluster (for `exobridge models`): `placed_nodes` (nodes of its
    instances; 0 when not placed), `downloaded_nodes` (nodes that have its files) and `fits` (its size is at
    most the cluster's free RAM: an estimate; `models load` asks Exo's previews). Keys are left out when the
    state does not say."""
    placed: dict[str, int] = {}
    instances = field_of(state, "instances")
    for instance_id, wrapped in instances.items() if isinstance(instances, dict) else []:
        view = instance_view(str(instance_id), wrapped)
        _, inner = untag(wrapped)
        model = field_of(field_of(inner, "shardAssignments", "shard_assignments"), "modelId", "model_id")
        if view is not None and isinstance(model, str):
            placed[model] = placed.get(model, 0) + (len(view.nodes) or 1)
    downloaded = downloaded_nodes(state)
    free = free_memory(state)
    for entry in entries:
        names = [n for n in (entry.get("id"), entry.get("hugging_face_id")) if isinstance(n, str)]
        if isinstance(instances, dict):
            entry["placed_nodes"] = max((placed.get(n, 0) for n in names), default=0)
        if isinstance(field_of(state, "downloads"), dict):
            entry["downloaded_nodes"] = max((len(downloaded.get(n, [])) for n in names), default=0)
        size = entry.get("size_bytes")
        if free is not None and isinstance(size, int):
            entry["fits"] = size <= free


def loads_in_progress(state: Any) -> list[dict[str, Any]]:
    """What an Exo v1 cluster is loading now (for `providers status`): one entry per placed instance that is
    not ready yet, `{"model", "phase" (downloading | loading | placed | failed), "nodes", "downloaded_bytes",
    "total_bytes", "layers_loaded", "layers_total", "error"}`. Ready instances are left out."""
    result: list[dict[str, Any]] = []
    instances = field_of(state, "instances")
    for instance_id, wrapped in instances.items() if isinstance(instances, dict) else []:
        _, inner = untag(wrapped)
        model = field_of(field_of(inner, "shardAssignments", "shard_assignments"), "modelId", "model_id")
        view = instance_view(str(instance_id), wrapped)
        if view is None or not isinstance(model, str):
            continue
        nodes = downloads_of(state, model, view.nodes or None)
        runners = runners_of(state, view.runners)
        if "runners" not in state or (view.runners and runners.ready == len(view.runners)):
            continue
        failed = next((n.failed for n in nodes if n.failed), None) or runners.failed
        if failed:
            phase = "failed"
        elif runners.loading or (nodes and all(n.done for n in nodes)):
            phase = "loading"
        elif nodes:
            phase = "downloading"
        else:
            phase = "placed"
        result.append(
            {
                "model": model,
                "phase": phase,
                "nodes": len(view.nodes) or None,
                "downloaded_bytes": sum(n.downloaded for n in nodes),
                "total_bytes": sum(n.total for n in nodes),
                "layers_loaded": runners.layers_loaded if runners.loading else None,
                "layers_total": runners.layers_total if runners.loading else None,
                "error": failed,
            }
        )
    return result


def error_message(data: Any, body: bytes) -> str:
    """Exo's own reason from an error body: `{"error": {"message"}}` (new), `{"detail"}` (old), `{"error": "…"}`."""
    error = field_of(data, "error")
    message = field_of(error, "message") if isinstance(error, dict) else error
    if not isinstance(message, str):
        message = field_of(data, "detail")
    if isinstance(message, str) and message.strip():
        return " ".join(message.split())[:300]
    text = body[:200].decode("utf-8", errors="replace").strip()
    return " ".join(text.split()) or "no reason given"
