"""What `serve` does when Exo says a model is not loaded (404 "No instance found"), by the provider's `load`.

- `never`: fail over, as always.
- `ask` (the default): serve cannot ask anybody, so it fails over, and says once per provider and model in its
  log that `exobridge models load MODEL` would keep the model local next time.
- `auto`: load the model (core/exo_loading.py, as `chat` and `POST /v1/exobridge/exo/load` do), bounded by the
  provider's `first_token_timeout`, then ask Exo again; when the load fails or times out, fail over. A streamed
  request is kept open meanwhile with SSE comment lines (`: loading llama-3.2-3b on exo: …`), which clients
  ignore; a whole (non-streamed) request just waits. A client that leaves stops the waiting at once (Exo keeps
  loading) and nothing fails over.

`NotLoadedHook(run)` is the Router's `on_not_loaded` for one serve request (serve/bridge.py `RouteRun.work`).
It runs on the route's worker thread.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exobridge.core.config import ProviderConfig
    from exobridge.core.errors import Failure
    from exobridge.core.model_targets import Target
    from exobridge.serve.bridge import RouteRun

COMMENT = "comment"  # the Event kind of a keep-alive line (serve/chat_endpoint.py sends it as `: text`)
KEEP_ALIVE = 15.0  # seconds without a change of the load after which a kept-open stream gets a comment anyway
LOCK_CHECK = 0.25  # seconds between looks at a client that may have left while another request loads

# One load per provider and model at a time: a second request waits for the first and then asks Exo again.
_LOADING: dict[tuple[str, str], threading.Lock] = {}
_LOADING_LOCK = threading.Lock()


class NotLoadedHook:
    """The Router's `on_not_loaded` hook for one serve request."""

    def __init__(self, run: RouteRun) -> None:
        self.run = run

    def __call__(self, target: Target, url: str, model: str, failure: Failure) -> bool:
        from exobridge.core import exo_loading, model_targets

        provider = target.provider
        name = model_targets.split_pinned(self.run.request.model, self.run.config)[1]
        mode = exo_loading.load_mode(provider, name)
        if mode == "never":
            return False
        if mode != "auto":
            self._notice_once(provider, name)
            return False
        return self._load(target, url, model, name)

    # --- ask ------------------------------------------------------------------------------------------------
    def _notice_once(self, provider: ProviderConfig, name: str) -> None:
        log = getattr(self.run, "log", None)
        if log is None:
            return
        log.warn_once(  # once per serve log: per serve process, and per in-process test server
            ("not loaded", provider.name, name),
            f"{name} is not loaded on your Exo cluster ({provider.name}): failing over; "
            f"`exobridge models load {self.run.request.model}` would keep it local next time "
            f'(or load = "auto" in [providers.{provider.name}])',
        )

    # --- auto -----------------------------------------------------------------------------------------------
    def _comment(self, text: str) -> None:
        """A keep-alive line for a streamed request (nothing for a whole one: it just waits)."""
        run = self.run
        if run.request.stream:
            from exobridge.serve.bridge import Event

            run._push(Event(COMMENT, text=run.secrets(text)))  # one line: wire.ChunkWriter.comment

    def _gone(self) -> None:
        if self.run.cancelled.is_set():
            from exobridge.serve.bridge import ClientGone

            raise ClientGone()

    def _load(self, target: Target, url: str, model: str, name: str) -> bool:
        from exobridge.core import exo_loading
        from exobridge.core.errors import ExobridgeError, Failure
        from exobridge.core.exo_loading import Phase

        provider = target.provider
        timeout = provider.first_token_timeout
        deadline = time.monotonic() + timeout
        # What a stream kept open while loading says in its headers (the first token sets them again).
        self.run.provider, self.run.url, self.run.model = provider.name, url, model
        self._comment(f"{name} is not loaded on {provider.name}: loading it (up to {timeout:g} s)")
        with _LOADING_LOCK:
            lock = _LOADING.setdefault((provider.name, model), threading.Lock())
        while not lock.acquire(timeout=LOCK_CHECK):  # another request loads it: wait for that load
            self._gone()
            if time.monotonic() >= deadline:
                return self._failed(provider, name, "another request's load did not finish in time")
        last = None
        try:
            loader, load_target = exo_loading.route_loader(target, url, model, name, self.run.request.model)
            with loader, self.run.on_cancel(loader.stop):  # a client that leaves ends the waiting at once
                left = max(deadline - time.monotonic(), 0.001)
                for event in loader.load(load_target, timeout=left):
                    self._gone()  # the client left: stop waiting, Exo keeps loading
                    last = event
                    self._comment(f"loading {name} on {provider.name}: {event.message}")
        except (ExobridgeError, Failure) as exc:
            return self._failed(provider, name, str(exc))
        finally:
            lock.release()
        self._gone()
        if last is None or last.phase is not Phase.READY:
            return self._failed(provider, name, last.message if last is not None else "no answer")
        return True

    def _failed(self, provider: ProviderConfig, name: str, why: str) -> bool:
        text = f"could not load {name} on {provider.name}: {why}; failing over"
        self._comment(text)
        log = getattr(self.run, "log", None)
        if log is not None:
            log.warn(text)
        return False
