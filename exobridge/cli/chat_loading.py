"""What `chat` does when Exo says the model is not loaded (404 "No instance found"), by the provider's `load`:

- `never`: fail over as always.
- `ask`, not on a terminal (scripts, pipes): fail over, with a notice naming `exobridge models load MODEL`.
- `ask` on a terminal: when the model would fit, ask once: load it now [Y], use the next provider this time
  [o], or never ask for this model [n] (remembered in the config: `providers.NAME.load_never`).
- `auto`: load it with progress on stderr (bounded by the provider's first_token_timeout), then answer from
  Exo; when the load fails or times out, say so and fail over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exobridge.core.config import Config, ProviderConfig
    from exobridge.core.errors import Failure
    from exobridge.core.exo_loading import ExoLoader, FitCheck, LoadTarget
    from exobridge.core.model_targets import Target
    from exobridge.render.io import IOStreams


class NotLoadedHandler:
    """The Router's `on_not_loaded` hook for one chat run."""

    def __init__(self, config: Config, io: IOStreams, spec: str, targets: list[Target], *, quiet: bool = False) -> None:
        from exobridge.core import model_targets

        self.config = config
        self.io = io
        self.spec = spec
        self.name = model_targets.split_pinned(spec, config)[1]
        self.targets = targets
        self.quiet = quiet

    def notice(self, text: str) -> None:
        if not self.quiet:
            from exobridge.core.sanitize import terminal_text

            self.io.notice(terminal_text(text))

    def _next_provider(self, provider: ProviderConfig) -> str:
        from exobridge.core import providers

        names = [t.provider for t in self.targets if t.provider.enabled and t.model is not None]
        later = names[names.index(provider) + 1 :] if provider in names else []
        if not later:
            return "another provider"
        nxt = later[0]
        # "OpenRouter" for the built-in provider named after its kind; a provider of your own by its name
        return providers.kind_class(nxt.kind).label if nxt.name == nxt.kind else nxt.name

    def __call__(self, target: Target, url: str, model: str, failure: Failure) -> bool:
        from exobridge.core import exo_loading

        provider = target.provider
        mode = exo_loading.load_mode(provider, self.name)
        if mode == "never":
            return False
        if mode == "ask" and not (self.io.is_stdin_tty and self.io.is_stderr_tty):
            self.notice(exo_loading.not_loaded_notice(self.name, provider, self.spec))
            return False
        loader, load_target = exo_loading.route_loader(target, url, model, self.name, self.spec)
        with loader:
            if mode == "ask":
                fit = self._fit(loader, load_target)
                if fit is None:
                    return False
                if not self._ask(provider, fit):
                    return False
            return self._load(loader, load_target, provider)

    def _fit(self, loader: ExoLoader, load_target: LoadTarget) -> FitCheck | None:
        from exobridge.core.errors import ExobridgeError, Failure

        try:
            loader.connect()
            if loader.line != "v1":
                from exobridge.core.exo_loading import FitCheck

                return FitCheck(True, None)
            exo_id, size = loader.choose_id(load_target)
            loader.model_id = exo_id
            fit = loader.fit(exo_id, size, loader.state())
        except (ExobridgeError, Failure) as exc:
            self.notice(f"cannot check whether {self.name} fits on {load_target.provider.name}: {exc}")
            return None
        if not fit.fits:
            self.notice(f"{self.name} is not loaded on your Exo cluster and does not fit it now")
            return None
        return fit

    def _ask(self, provider: ProviderConfig, fit: FitCheck) -> bool:
        from exobridge.core.exo_loading import size_text

        where = []
        if fit.size_bytes is not None:
            where.append(size_text(fit.size_bytes))
        if fit.node_count:
            where.append(f"fits on {fit.node_count} node{'s' if fit.node_count != 1 else ''}")
        facts = f" ({', '.join(where)})" if where else ""
        other = self._next_provider(provider)
        question = (
            f"{self.name} is not loaded on your Exo cluster{facts}. Load it now [Y], use {other} this time [o], "
            "or never ask for this model [n]? "
        )
        self.io.write_err(question)
        answer = (self.io.stdin.readline() or "").strip().lower()
        if answer in ("", "y", "yes"):
            return True
        if answer in ("n", "never"):
            self._remember_never(provider)
        return False

    def _remember_never(self, provider: ProviderConfig) -> None:
        from exobridge.core import config_document, config_file
        from exobridge.core.errors import ExobridgeError

        key = f"providers.{provider.name}.load_never"
        current = list(provider.load_never)
        if self.name in current:
            return

        def mutate(doc: object) -> None:
            config_document.set_in_document(doc, ("providers", provider.name, "load_never"), [*current, self.name])  # type: ignore[arg-type]

        try:
            config_file.edit_config(mutate, self.config.path)
        except (ExobridgeError, OSError) as exc:
            self.notice(f"could not remember that in the config: {exc}")
            return
        self.notice(f"will not ask again for {self.name} ({key} in {self.config.path})")

    def _load(self, loader: ExoLoader, load_target: LoadTarget, provider: ProviderConfig) -> bool:
        from exobridge.core.errors import ExobridgeError, Failure
        from exobridge.core.exo_loading import Phase
        from exobridge.render.exo_loading import LoadView

        view = LoadView(self.io, stderr=True)
        last = None
        try:
            for event in loader.load(load_target, timeout=provider.first_token_timeout):
                if not self.quiet:
                    view.show(event)
                last = event
        except (ExobridgeError, Failure) as exc:
            view.note(f"could not load {self.name} on {provider.name}: {exc}; failing over", show=not self.quiet)
            return False
        except KeyboardInterrupt:
            stopped = f"stopped waiting; Exo keeps loading {self.name} (exobridge models unload {self.spec} stops it)"
            view.note(stopped, show=not self.quiet)
            raise
        if last is None or last.phase is not Phase.READY:
            message = last.message if last is not None else "no answer"
            view.note(f"could not load {self.name} on {provider.name}: {message}; failing over", show=not self.quiet)
            return False
        if not self.quiet:
            view.finish(last, 0, None)
        return True
