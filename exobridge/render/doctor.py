"""What `exobridge doctor` shows: sections of checks with `✓ ! ✗` on a terminal, `ok warn fail` when piped."""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from exobridge.render.chat import stream_is_tty

MARKS = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red")}


def summary_text(report: Any) -> str:
    ok, warn, fail = report.count("ok"), report.count("warn"), report.count("fail")
    text = f"{ok} ok, {warn} warning{'s' if warn != 1 else ''}, {fail} failure{'s' if fail != 1 else ''}"
    if report.strict and warn:
        text += " (--strict: warnings fail)"
    return text


class DoctorView:
    def __init__(self, *, json_mode: bool, stdout: IO[str] | None = None) -> None:
        self.stdout = stdout or sys.stdout
        self.json_mode = json_mode
        self.styled = not json_mode and stream_is_tty(self.stdout)

    def show(self, report: Any) -> None:
        if self.json_mode:
            self.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
        elif self.styled:
            self._rich(report)
        else:
            self._plain(report)
        self.stdout.flush()

    def _plain(self, report: Any) -> None:
        section = None
        lines: list[str] = []
        for check in report.checks:
            if check.section != section:
                if section is not None:
                    lines.append("")
                section = check.section
                lines.append(section)
            lines.append(f"  {check.status:<5} {check.detail}")
            if check.fix and check.status != "ok":
                lines.append(f"        fix: {check.fix}")
        lines += ["", summary_text(report)]
        self.stdout.write("\n".join(lines) + "\n")

    def _rich(self, report: Any) -> None:
        from rich.console import Console
        from rich.text import Text

        console = Console(file=self.stdout, highlight=False, no_color=bool(os.environ.get("NO_COLOR")))
        section = None
        for check in report.checks:
            if check.section != section:
                if section is not None:
                    console.print()
                section = check.section
                console.print(Text(section, style="bold"))
            mark, style = MARKS.get(check.status, ("?", ""))
            line = Text("  ")
            line.append(mark, style=style)
            line.append(f" {check.detail}")
            if check.ms >= 100:
                line.append(f"  {check.ms} ms", style="dim")
            console.print(line)
            if check.fix and check.status != "ok":
                console.print(Text(f"    → {check.fix}", style="cyan"))
        console.print()
        style = "bold red" if report.failed else ("yellow" if report.count("warn") else "green")
        console.print(Text(summary_text(report), style=style))
