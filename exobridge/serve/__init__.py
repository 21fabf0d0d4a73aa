"""`exobridge serve`: the routing core behind a local OpenAI-compatible HTTP endpoint.

Modules, each one job:

- `options`: what the command line asked for (`ServeOptions`) and the client key it resolves to.
- `wire`: the OpenAI wire format: request fields in, `chat.completion` / `chat.completion.chunk` objects,
  SSE framing, OpenAI-style error bodies and the HTTP status that best fits a failed route.
- `bridge`: one chat request driven through `core.routing.Router` on a worker thread, its text pieces handed to
  the event loop; a client that goes away cancels the upstream request at once.
- `shared`: what concurrent requests share: cooldowns (the CLI's state file, plus a gate so that 100
  simultaneous requests try a failing node once), the live config (reloaded when the file changes) and small
  time-to-live caches for the status and model list endpoints.
- `app`: the ASGI application (Starlette): routes, client authentication, request limits, the access log.
- `logs`: the start-up line, one line per request and warnings on stderr, as text or JSON lines.
- `server`: binding, redaction of every key, uvicorn, and graceful SIGINT/SIGTERM.
- `dashboard`: the page at `GET /` (static files from exobridge/data/dashboard/, strict security headers);
  `history_view`: its history and spend answers; `exo_load`: loading a model onto Exo with progress events.

Nothing here is imported by `exobridge --help` or `chat`: starlette and uvicorn load only for `serve`.
"""
