"""What went wrong with one attempt, and the three separate decisions it leads to:
retry the same target, fail over to the next one, or stop.

`decide` is the README's failover table as code; `classify_http` / `classify_inband` turn a provider's error
reply into a `Failure` (defined in core/errors.py). `parse_retry_after` reads `Retry-After`
(seconds or an HTTP date) and Hugging Face's `estimated_time` safely: never negative, never NaN, and at most
`RETRY_AFTER_CAP` (1 hour), which also caps every cooldown (core/cooldown.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from exobridge.core.errors import Failure, FailureKind

__all__ = [
    "RETRY_AFTER_CAP",
    "RETRY_AFTER_LIMIT",
    "ErrorBody",
    "FailoverDecision",
    "classify_http",
    "classify_inband",
    "decide",
    "parse_error_body",
    "parse_error_object",
    "parse_retry_after",
]

RETRY_AFTER_LIMIT = 10.0  # seconds we are willing to wait before retrying the same target
RETRY_AFTER_CAP = 3600.0  # the most a provider's Retry-After (or any cooldown) may ask for: one hour
SERVER_RETRY_BACKOFF = 0.3


@dataclass(frozen=True)
class FailoverDecision:
    """What to do after a failed attempt: retry the same node, fail over to the next, or stop."""

    retry_same: bool
    retry_delay: float
    fail_over: bool


def decide(failure: Failure, *, already_retried: bool, printed: bool) -> FailoverDecision:
    """The failover table of the README, as code."""
    if printed:
        return FailoverDecision(False, 0.0, False)
    kind = failure.kind
    if kind is FailureKind.BAD_REQUEST:
        return FailoverDecision(False, 0.0, False)
    if already_retried:
        return FailoverDecision(False, 0.0, True)
    if kind is FailureKind.SERVER:
        if failure.retry_after is not None:
            # 503 with estimated_time (a model loading) or Retry-After: wait only within the budget.
            if failure.retry_after <= RETRY_AFTER_LIMIT:
                return FailoverDecision(True, failure.retry_after, True)
            return FailoverDecision(False, 0.0, True)
        return FailoverDecision(True, SERVER_RETRY_BACKOFF, True)
    if kind is FailureKind.RATE_LIMITED:
        if failure.retry_after is not None and failure.retry_after <= RETRY_AFTER_LIMIT:
            return FailoverDecision(True, failure.retry_after, True)
        return FailoverDecision(False, 0.0, True)
    return FailoverDecision(False, 0.0, True)


MESSAGE_LIMIT = 500  # characters of a provider's error message kept (one line on stderr, not a page)


@dataclass(frozen=True)
class ErrorBody:
    """A provider's error, as read from its body: the message (at most MESSAGE_LIMIT characters), its code."""

    message: str
    code: str | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if len(self.message) > MESSAGE_LIMIT:
            object.__setattr__(self, "message", self.message[: MESSAGE_LIMIT - 1] + "…")


def _stringify(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def parse_error_object(error: object) -> ErrorBody:
    """An `error` value as providers send it: a string, or an object with message/code/metadata."""
    if isinstance(error, str):
        return ErrorBody(error.strip())
    if not isinstance(error, dict):
        return ErrorBody(_stringify(error))
    message = str(error.get("message") or error.get("error") or error.get("type") or "unknown error").strip()
    code = error.get("code")
    code_text = None if code is None else str(code)
    metadata = error.get("metadata")
    if isinstance(metadata, dict):
        raw = metadata.get("raw")
        provider_name = metadata.get("provider_name")
        upstream = _upstream_message(raw)
        if upstream and upstream not in message:
            message = f"{message}: {upstream}"
        if provider_name:
            message = f"{message} (upstream {provider_name})"
    if error.get("type") and code_text is None:
        code_text = str(error["type"])
    return ErrorBody(message, code_text)


def _upstream_message(raw: object) -> str | None:
    """OpenRouter's `metadata.raw`: plain text, or a JSON string holding the upstream error."""
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            inner = json.loads(raw)
        except ValueError:
            return raw.strip()[:300] or None
    else:
        inner = raw
    if isinstance(inner, dict):
        err = inner.get("error", inner)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("type") or _stringify(err))[:300]
        return str(err)[:300]
    return _stringify(inner)[:300]


def parse_error_body(body: bytes, content_type: str = "") -> ErrorBody:
    """Error text from any body shape: `{"error": "str" or {...}}`, `{"detail": ...}`, text, HTML."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        retry_after = _seconds(data.get("estimated_time"))
        if data.get("error") is not None:  # `"error": null` next to a `message` is not the error
            parsed = parse_error_object(data["error"])
            return ErrorBody(parsed.message, parsed.code, retry_after)
        if "detail" in data:
            detail = data["detail"]
            if isinstance(detail, list) and detail and isinstance(detail[0], dict):
                detail = detail[0].get("msg", detail[0])
            return ErrorBody(_stringify(detail))
        if "message" in data:
            return ErrorBody(_stringify(data["message"]))
    if isinstance(data, str) and data.strip():  # a bare JSON string: its text, without the quotes
        return ErrorBody(data.strip()[:300])
    if text.startswith("<") or "html" in content_type:
        return ErrorBody("HTML page instead of an API reply")
    first_line = text.splitlines()[0] if text else "empty body"
    return ErrorBody(first_line[:300])


def _seconds(value: object) -> float | None:
    """A finite number of seconds, clamped to 0..RETRY_AFTER_CAP; None for anything else (bools, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float
        return RETRY_AFTER_CAP if value > 0 else 0.0
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def parse_retry_after(header: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: a number (`120`, `1.5`) or an HTTP date; capped at RETRY_AFTER_CAP.

    Anything unreadable (NaN, `inf`, garbage, an impossible date) is None: no wait was asked.
    """
    if not header:
        return None
    text = header.strip()
    if len(text) > 64:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return None if not math.isfinite(number) else _seconds(number)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
        stamp = when.timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if now is None:
        import time

        now = time.time()
    return _seconds(stamp - now)


def classify_http(status: int, error: ErrorBody, retry_after_header: str | None = None) -> Failure:
    """Map a non-2xx reply to a Failure. The message keeps the provider's own words."""
    message = error.message
    lowered = f"{message} {error.code or ''}".lower()
    reason = f"HTTP {status}: {message}"
    if status in (401, 403):
        return Failure(FailureKind.AUTH, reason, status)
    if status == 402:
        return Failure(FailureKind.CREDITS, reason, status)
    if status == 404:
        return Failure(FailureKind.MODEL_UNAVAILABLE, reason, status)
    if status == 429:
        return Failure(FailureKind.RATE_LIMITED, reason, status, parse_retry_after(retry_after_header))
    if status == 408 or status >= 500:
        retry = parse_retry_after(retry_after_header)
        if retry is None:
            retry = error.retry_after
        return Failure(FailureKind.SERVER, reason, status, retry)
    if "context_length" in lowered or "context length" in lowered or "maximum context" in lowered:
        return Failure(FailureKind.CONTEXT_LENGTH, reason, status)
    if status == 400 and ("unsupported model" in lowered or "model_not_found" in lowered):
        return Failure(FailureKind.MODEL_UNAVAILABLE, reason, status)
    if status in (400, 413, 422):
        return Failure(FailureKind.BAD_REQUEST, reason, status)
    return Failure(FailureKind.BAD_RESPONSE, reason, status)


def _status_code(code: str | None) -> int | None:
    """An HTTP-like status written in an error body: 429, "429" or 429.0."""
    if code is None:
        return None
    try:
        value = float(code)
    except ValueError:
        return None
    return int(value) if value.is_integer() and 100 <= value <= 599 else None


def classify_inband(error: object, status: int = 200) -> Failure:
    """An `error` object inside a 200 reply or stream. Its `code` may be a number or a string."""
    parsed = parse_error_object(error)
    code = parsed.code
    numeric = _status_code(code)
    if numeric is not None and numeric >= 400:
        failure = classify_http(numeric, parsed)
        if failure.kind is FailureKind.BAD_REQUEST:
            # A 400 reported mid-stream (e.g. "Token limit reached") is the provider's trouble, not proof
            # that the request is wrong everywhere.
            failure.kind = FailureKind.STREAM_BROKEN
        # The HTTP status was `status` (a 200): the code is only the one written in the body.
        failure.reason = f"error in the reply (code {numeric}): {parsed.message}"
        failure.status = status
        return failure
    reason = f"error in the reply: {parsed.message}" + (f" ({code})" if code else "")
    lowered = f"{parsed.message} {code or ''}".lower()
    if "context_length" in lowered:
        return Failure(FailureKind.CONTEXT_LENGTH, reason, status)
    return Failure(FailureKind.STREAM_BROKEN, reason, status)
