"""What a doctor check finds: a status, one line of detail, and the one-line fix; the report they make up."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


OK, WARN, FAIL = Status.OK, Status.WARN, Status.FAIL


class Section(StrEnum):
    """Report sections, in the order they are shown (a provider's section is `Provider <name>`)."""

    ENVIRONMENT = "Environment"
    CONFIG = "Config"
    PROVIDER = "Provider"
    NETWORK = "Network"
    BUDGET = "Budget"  # only when a [budget] is set (core/doctor/budget.py)


def provider_section(name: str) -> str:
    return f"{Section.PROVIDER} {name}"


def section_rank(section: str) -> int:
    for index, name in enumerate(Section):
        if section == name or section.startswith(f"{name} "):
            return index
    return len(Section)


@dataclass
class CheckResult:
    id: str
    section: str
    status: Status
    detail: str
    fix: str | None = None
    ms: int = 0
    command: str | None = None  # the one exobridge command that fixes it, when there is one (not in --json)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "section": self.section,
            "status": str(self.status),
            "detail": self.detail,
            "fix": self.fix,
            "ms": self.ms,
        }


@dataclass
class Report:
    """The checks in display order. `config_error` is set when the config, the keys file or a proxy variable
    cannot be used: the report is still shown, and the process ends with exit 4 like every other command."""

    checks: list[CheckResult]
    strict: bool = False
    config_error: Exception | None = None
    fresh: bool = False  # no config file and no provider can serve the default model: `exobridge setup` helps

    @property
    def next_command(self) -> str | None:
        """The single most useful command when something failed: `exobridge setup` on a fresh machine, else the
        command of the first failure that has one, else of the first warning that has one."""
        if not self.failed or self.config_error is not None:
            return None
        if self.fresh:
            return "exobridge setup"
        for status in (FAIL, WARN):
            for check in self.checks:
                if check.status == status and check.command:
                    return check.command
        return None

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)

    @property
    def failed(self) -> bool:
        return self.count(FAIL) > 0 or (self.strict and self.count(WARN) > 0)

    @property
    def exit_code(self) -> int:
        from exobridge.core.errors import ExitCode

        if self.config_error is not None:
            return int(ExitCode.CONFIG)
        return int(ExitCode.INTERNAL) if self.failed else int(ExitCode.OK)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "checks": [c.to_json() for c in self.checks],
            "summary": {
                "ok": self.count(OK),
                "warn": self.count(WARN),
                "fail": self.count(FAIL),
                "strict": self.strict,
                "exit_code": self.exit_code,
                "next_command": self.next_command,
            },
        }
        if self.config_error is not None:
            data["error"] = self.error_line
            data["exit_code"] = self.exit_code
        return data

    @property
    def error_line(self) -> str | None:
        """The one-line message of `config_error`, worded as every other command words it."""
        if self.config_error is None:
            return None
        line = getattr(self.config_error, "line", None)
        return line() if callable(line) else str(self.config_error)
