"""Property tests (Hypothesis, bounded) of the readers every provider byte goes through: the SSE decoder, the
stream and whole-reply readers, error-body parsing and Retry-After. Whatever arrives, they raise nothing but
`Failure`, never exceed their caps, and split-anywhere input decodes like whole input."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exobridge.core import failover
from exobridge.core.errors import Failure
from exobridge.core.reply import ReplyBuilder, SSEDecoder, feed_event, read_sse_body

BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)

# Chat-ish objects: the shapes readers look into, with every field allowed to be wrong.
chunkish = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values,
        "usage": json_values,
        "error": json_values,
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "delta": st.fixed_dictionaries({}, optional={"content": json_values, "reasoning": json_values})
                    | json_values,
                    "message": st.fixed_dictionaries({}, optional={"content": json_values}) | json_values,
                    "finish_reason": json_values,
                },
            )
            | json_values,
            max_size=3,
        )
        | json_values,
    },
)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(min(c, len(data)) for c in cuts)  # repeated cuts give empty pieces too
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def decode_all(pieces: list[bytes], cap: int = 1 << 20) -> list[str]:
    decoder = SSEDecoder(cap)
    events: list[str] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    return events


sse_lines = st.lists(
    st.one_of(
        st.builds(
            lambda t: f"data: {t}",
            st.text(alphabet=st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=30),
        ),
        st.builds(
            lambda t: f"data:{t}",
            st.text(alphabet=st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=30),
        ),
        st.builds(
            lambda t: f": {t}",
            st.text(alphabet=st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=10),
        ),
        st.just("event: message"),
        st.just("id: 1"),
        st.just(""),
    ),
    max_size=30,
)


@BOUNDED
@given(lines=sse_lines, newline=st.sampled_from(["\n", "\r\n", "\r"]), cuts=st.lists(st.integers(0, 2000)))
def test_sse_decodes_the_same_however_the_bytes_are_split(lines: list[str], newline: str, cuts: list[int]) -> None:
    data = (newline.join(lines) + newline).encode()
    assert decode_all(split_at(data, cuts)) == decode_all([data])


@BOUNDED
@given(lines=sse_lines)
def test_sse_events_are_the_data_lines_between_blank_lines(lines: list[str]) -> None:
    expected: list[str] = []
    pending: list[str] = []
    for line in lines:
        if line == "":
            if pending:
                expected.append("\n".join(pending))
            pending = []
        elif line.startswith("data:"):
            value = line[5:]
            pending.append(value[1:] if value.startswith(" ") else value)
    assert decode_all([("\n".join(lines) + "\n").encode()]) == expected


@BOUNDED
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8), cap=st.integers(1, 200))
def test_sse_decoder_raises_only_failure_and_never_holds_more_than_its_cap(
    data: bytes, cuts: list[int], cap: int
) -> None:
    try:
        events = decode_all(split_at(data, cuts), cap=cap)
    except Failure as failure:
        assert "(cap)" in failure.reason
        return
    assert all(len(event) <= cap for event in events)


@BOUNDED
@given(objects=st.lists(chunkish | json_values, max_size=6))
def test_stream_events_of_any_shape_raise_only_failure(objects: list[Any]) -> None:
    builder = ReplyBuilder(lambda piece: None)
    try:
        for obj in objects:
            if feed_event(builder, json.dumps(obj)):
                break
        builder.result()
    except Failure:
        pass


@BOUNDED
@given(data=st.text(max_size=200))
def test_stream_event_text_of_any_kind_raises_only_failure(data: str) -> None:
    with contextlib.suppress(Failure):
        feed_event(ReplyBuilder(lambda piece: None), data)


@BOUNDED
@given(obj=chunkish | json_values)
def test_whole_replies_of_any_shape_raise_only_failure(obj: Any) -> None:
    builder = ReplyBuilder(lambda piece: None)
    try:
        builder.completion(obj)
        reply = builder.result()
    except Failure:
        return
    assert isinstance(reply.text, str) and reply.text


@BOUNDED
@given(body=st.binary(max_size=500))
def test_a_whole_sse_body_of_any_bytes_raises_only_failure(body: bytes) -> None:
    with contextlib.suppress(Failure):
        read_sse_body(b"data: " + body, ReplyBuilder(lambda piece: None))


@BOUNDED
@given(body=st.binary(max_size=400) | st.builds(lambda v: json.dumps(v).encode(), json_values))
def test_error_bodies_of_any_shape_give_a_message(body: bytes) -> None:
    parsed = failover.parse_error_body(body, "application/json")
    assert isinstance(parsed.message, str)
    assert parsed.retry_after is None or 0 <= parsed.retry_after <= failover.RETRY_AFTER_CAP
    for status in (400, 401, 404, 429, 500, 503):
        assert isinstance(failover.classify_http(status, parsed, None), Failure)


@BOUNDED
@given(header=st.text(max_size=40) | st.builds(str, st.floats()) | st.builds(str, st.integers()))
def test_retry_after_is_none_or_finite_and_capped(header: str) -> None:
    seconds = failover.parse_retry_after(header)
    assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= failover.RETRY_AFTER_CAP)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_an_event_cut_off_by_the_end_of_the_stream_is_not_dispatched(newline: str) -> None:
    assert decode_all([f"data: a{newline}{newline}data: b".encode()]) == ["a"]


# --- bodies: decoded in bounded steps, within their cap ---------------------------------------------------


def _encode(data: bytes, encoding: str) -> bytes:
    import gzip
    import zlib

    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "raw-deflate":
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return compressor.compress(data) + compressor.flush()
    return data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=5000) | st.builds(lambda n: b"\0" * n, st.integers(0, 150_000)),
    encoding=st.sampled_from(["identity", "gzip", "deflate", "raw-deflate"]),
    cap=st.integers(0, 200_000),
)
def test_bodies_decode_exactly_or_fail_at_their_cap(data: bytes, encoding: str, cap: int) -> None:
    import httpx

    from exobridge.core import http

    header = "deflate" if encoding == "raw-deflate" else encoding
    response = httpx.Response(
        200, headers={"Content-Encoding": header}, stream=httpx.ByteStream(_encode(data, encoding))
    )
    try:
        pieces = list(http.iter_decoded(response, cap))
    except Failure as failure:
        assert len(data) > cap and failure.reason.endswith("(cap)")
        return
    assert len(data) <= cap
    assert all(len(piece) <= http.DECODE_STEP for piece in pieces) or encoding == "identity"
    assert b"".join(pieces) == data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(max_size=2000), encoding=st.sampled_from(["gzip", "deflate", "br", "gzip, gzip", "zstd"]))
def test_undecodable_bodies_raise_only_failure(garbage: bytes, encoding: str) -> None:
    import httpx

    from exobridge.core import http

    response = httpx.Response(200, headers={"Content-Encoding": encoding}, stream=httpx.ByteStream(garbage))
    with contextlib.suppress(Failure):
        list(http.iter_decoded(response, 1 << 20))


def test_a_crlf_split_by_an_empty_chunk_is_still_one_line_end() -> None:
    assert decode_all([b"data: x\r", b"", b"\ndata: y\r\n\r\n"]) == ["x\ny"]
