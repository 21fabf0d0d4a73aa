"""Showing a model load (`exobridge models load`, chat's `load = "auto"`).

- On a terminal: one Rich progress bar per node (bytes, speed, ETA, as Exo reports them), phase lines above
  it, and the outcome ("ready on 2 nodes: … (pipeline, 2 shards)").
- Piped: one plain line per phase change.
- `--json`: one JSON object per line per phase change (`LoadEvent.to_json()`); the last one also carries
  `"error"` (null when ready) and `"exit_code"`.

Provider strings (node ids, Exo's reasons) are shown through `terminal_text` and never read as Rich markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exobridge.core.exo_loading import Phase, size_text
from exobridge.core.sanitize import terminal_text

if TYPE_CHECKING:
    from exobridge.core.exo_loading import LoadEvent
    from exobridge.core.exo_state import NodeProgress
    from exobridge.render.io import IOStreams


def _rate(speed: float | None) -> str:
    return f"{size_text(int(speed))}/s" if speed else "–"


def _eta(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "–"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def plain_line(event: LoadEvent) -> str:
    """The one line a phase change prints when piped (and what a terminal shows above the bars)."""
    text = terminal_text(event.message)
    if event.phase is Phase.DOWNLOADING and event.nodes:
        done = sum(n.downloaded for n in event.nodes)
        total = sum(n.total for n in event.nodes)
        if total:
            text += f" ({size_text(done)} of {size_text(total)})"
    if event.phase is Phase.LOADING and event.layers_total:
        text += f" ({event.layers_loaded}/{event.layers_total} layers)"
    return text


class LoadView:
    """Shows the events of one load on `io` (stdout for `models load`, stderr for chat)."""

    def __init__(self, io: IOStreams, *, json_mode: bool = False, stderr: bool = False) -> None:
        self.io = io
        self.json_mode = json_mode
        self.stderr = stderr
        self.tty = io.is_stderr_tty if stderr else io.is_stdout_tty
        self._last_phase: Phase | None = None
        self._last_line: str | None = None
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    # --- output primitives ---
    def _line(self, text: str) -> None:
        if self.stderr:
            self.io.write_err(text + "\n")
        else:
            self.io.write_out(text + "\n")

    def show(self, event: LoadEvent) -> None:
        """One event (call for each one the loader yields)."""
        changed = event.phase != self._last_phase
        self._last_phase = event.phase
        if self.json_mode:
            if changed and event.phase not in (Phase.READY, Phase.FAILED, Phase.TIMEOUT):
                self.io.write_json(event.to_json())
            return
        if self.tty:
            self._show_tty(event, changed)
            return
        line = plain_line(event)
        if changed and event.phase not in (Phase.READY, Phase.FAILED, Phase.TIMEOUT) and line != self._last_line:
            self._line(line)
            self._last_line = line

    def finish(self, event: LoadEvent, exit_code: int, error: str | None) -> None:
        """The outcome: the ready line (stdout/stderr), or nothing but the JSON object (errors are the
        runner's to print)."""
        self._stop_bars(event)
        if self.json_mode:
            self.io.write_json({**event.to_json(), "error": error, "exit_code": exit_code})
            return
        if event.phase is Phase.READY:
            self._line(terminal_text(event.message))

    def note(self, text: str, *, show: bool = True) -> None:
        """A remark that is not a phase (Ctrl-C, cancel, failing over): stderr, one line; the bars stop first
        (so the cursor comes back) even when `show` is False."""
        self._stop_bars(None)
        if show:
            self.io.notice(terminal_text(text))

    def close(self) -> None:
        """Stop the bars if they still run (an error ended the load): the cursor comes back."""
        self._stop_bars(None)

    # --- terminal ---
    def _console(self) -> Any:
        return self.io.rich_console(stderr=self.stderr)

    def _show_tty(self, event: LoadEvent, changed: bool) -> None:
        from rich.text import Text

        if changed and event.phase not in (Phase.READY, Phase.FAILED, Phase.TIMEOUT):
            line = plain_line(event) if event.phase is not Phase.DOWNLOADING else terminal_text(event.message)
            if line != self._last_line:
                target = self._progress.console if self._progress is not None else self._console()
                target.print(Text(line, style="dim"))
                self._last_line = line
        if event.nodes and event.phase in (Phase.DOWNLOADING, Phase.LOADING, Phase.PLACED):
            self._update_bars(event.nodes)

    def _update_bars(self, nodes: list[NodeProgress]) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                DownloadColumn(binary_units=False),
                TextColumn("{task.fields[speed]}", markup=False),
                TextColumn("ETA {task.fields[eta]}", markup=False),
                console=self._console(),
                transient=False,
                auto_refresh=False,
            )
            self._progress.start()
        for node in nodes:
            task = self._tasks.get(node.node)
            total = node.total or None
            fields = {"speed": "done" if node.done else _rate(node.speed), "eta": "–" if node.done else _eta(node.eta)}
            if task is None:
                label = terminal_text(node.node)
                label = label if len(label) <= 16 else label[:7] + "…" + label[-8:]
                self._tasks[node.node] = self._progress.add_task(
                    label, total=total, completed=node.downloaded, **fields
                )
            else:
                self._progress.update(task, total=total, completed=node.downloaded, **fields)
        self._progress.refresh()

    def _stop_bars(self, event: LoadEvent | None) -> None:
        if self._progress is None:
            return
        if event is not None and event.nodes:
            self._update_bars(event.nodes)
        self._progress.stop()
        self._progress = None
