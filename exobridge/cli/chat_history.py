"""chat's history and budget part: continue a conversation (-c, --cid), check budgets before sending, record
the request afterwards. `cli/chat.py` calls `ChatSession.prepare` before routing and `finish` after it.

Recording never changes the run's outcome: a database that is locked, read-only, corrupt or on a full disk
costs one warning line on stderr and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exobridge.core.budget import BudgetCheck
    from exobridge.core.config import Config
    from exobridge.core.routing import ChatResult, Router
    from exobridge.render.io import IOStreams


@dataclass
class ChatSession:
    """One chat run's history side: the conversation it continues, the budget check, what to record."""

    config: Config
    io: IOStreams
    logging: bool
    prompt: str = ""
    system: str | None = None
    conversation: str = ""
    parent: int | None = None
    sent_extra: list[dict[str, Any]] = field(default_factory=list)
    budget_check: BudgetCheck | None = None
    quiet: bool = False

    @classmethod
    def prepare(cls, opts: Any, config: Config, io: IOStreams, text: str, targets: list[Any]) -> ChatSession:
        """Decide logging, load the conversation to continue, build the budget check."""
        from exobridge.core import history, history_record

        logging = not history.logging_disabled(config.log, opts.no_log)
        session = cls(config, io, logging, prompt=text, system=opts.system, quiet=opts.quiet)
        session.conversation = history.new_conversation_id()
        if opts.continue_latest or opts.cid:
            first = targets[0] if targets else None
            try:
                found = history_record.continuation(
                    latest=opts.continue_latest,
                    cid=opts.cid,
                    prompt=text,
                    system=opts.system,
                    max_tokens=opts.max_tokens,
                    provider=first.provider.name if first else None,
                    model=first.model if first else None,
                )
            except history.HistoryUnavailable as exc:
                session.warn(f"{exc}; starting a new conversation")
            else:
                session.conversation, session.parent, session.system = found.conversation, found.parent, found.system
                session.sent_extra = found.prior
                if found.dropped:
                    session.notice(
                        f"dropped the {found.dropped} oldest turn{'s' if found.dropped != 1 else ''} of the "
                        f"conversation to fit the context ({found.context_tokens} tokens)"
                    )
        session.budget_check = _budget_check(config, opts)
        return session

    def warn(self, line: str) -> None:
        from exobridge.core.sanitize import terminal_text

        self.io.notice(f"exobridge: warning: {terminal_text(line)}", "yellow")

    def notice(self, line: str) -> None:
        if not self.quiet:
            self.io.notice(f"exobridge: {line}")

    def messages(self) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        if self.system:
            sent.append({"role": "system", "content": self.system})
        sent.extend(self.sent_extra)
        sent.append({"role": "user", "content": self.prompt})
        return sent

    def attach(self, router: Router) -> None:
        """Budgets as the router's pre-send check; keep the reply text when it is to be recorded."""
        if self.budget_check is not None:
            router.pre_send = self.budget_check
        if self.logging:
            router.keep_text = True

    def finish(self, result: ChatResult, cli_keys: dict[str, str]) -> None:
        """Show budget notices, then record the request (warnings only, never a different exit code)."""
        if self.budget_check is not None:
            for line in self.budget_check.notices:
                # An override always shows; an 80 % notice is a notice (not with --quiet).
                if line.startswith("budget override"):
                    self.warn(line)
                else:
                    self.notice(line)
        if not self.logging:
            return
        from exobridge.core import history_record, secrets

        entry = history_record.entry_for(
            result,
            prompt=self.prompt,
            system=self.system,
            messages=None,
            conversation=self.conversation,
            parent=self.parent,
            config=self.config,
        )
        redactor = secrets.config_redactor(self.config, extra=cli_keys.values())
        for line in history_record.record(entry, redactor):
            self.warn(line)


def _budget_check(config: Config, opts: Any) -> BudgetCheck | None:
    if config.budget is None:  # no `[budget]` table (Config.budget): no limits, nothing to load
        return None
    from exobridge.core import budget

    override = bool(opts.budget_override) or len(opts.providers) == 1
    return budget.check_for(config, budget.spent_from_history, override=override)
