"""What `exobridge doctor` shows: sections of checks with `✓ ! ✗` on a terminal, `ok warn fail` when piped,
one JSON object with `--json`. Details and fixes can hold provider text (error bodies, model ids): they are
shown through core/sanitize (escape sequences escaped) and as Rich `Text` (never read as markup)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exobridge.render.io import IOStreams

MARKS = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red")}


def summary_text(report: Any) -> str:
    ok, warn, fail = report.count("ok"), report.count("warn"), report.count("fail")
    text = f"{ok} ok, {warn} warning{'s' if warn != 1 else ''}, {fail} failure{'s' if fail != 1 else ''}"
    if report.strict and warn:
        text += " (--strict: warnings fail)"
    return text


class DoctorView:
    def __init__(self, io: IOStreams, *, json_mode: bool) -> None:
        self.io = io
        self.json_mode = json_mode
        self.styled = not json_mode and io.is_stdout_tty

    def show(self, report: Any) -> None:
        if self.json_mode:
            import json

            self.io.write_out(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
        elif self.styled:
            self._rich(report)
        else:
            self._plain(report)

    def _plain(self, report: Any) -> None:
        from exobridge.core.sanitize import terminal_text

        section = None
        lines: list[str] = []
        for check in report.checks:
            if check.section != section:
                if section is not None:
                    lines.append("")
                section = check.section
                lines.append(terminal_text(section))
            lines.append(f"  {check.status:<5} {terminal_text(check.detail)}")
            if check.fix and check.status != "ok":
                lines.append(f"        fix: {terminal_text(check.fix)}")
        lines += ["", summary_text(report)]
        if report.next_command:
            lines.append(f"next: {report.next_command}")
        self.io.write_out("\n".join(lines) + "\n")

    def _rich(self, report: Any) -> None:
        from rich.text import Text

        from exobridge.core.sanitize import terminal_text

        console = self.io.rich_console()
        section = None
        for check in report.checks:
            if check.section != section:
                if section is not None:
                    console.print()
                section = check.section
                console.print(Text(terminal_text(section), style="bold"))
            mark, style = MARKS.get(str(check.status), ("?", ""))
            line = Text("  ")
            line.append(mark, style=style)
            line.append(f" {terminal_text(check.detail)}")
            if check.ms >= 100:
                line.append(f"  {check.ms} ms", style="dim")
            console.print(line)
            if check.fix and check.status != "ok":
                console.print(Text(f"    → {terminal_text(check.fix)}", style="cyan"))
        console.print()
        style = "bold red" if report.failed else ("yellow" if report.count("warn") else "green")
        console.print(Text(summary_text(report), style=style))
        if report.next_command:
            console.print(Text(f"next: {report.next_command}", style="bold cyan"))
