"""core/proxies.py says which proxy httpx uses for a url; these tests hold it equal to what httpx DOES.

The table test observes real clients: every host name resolves to 127.0.0.1 (getaddrinfo is replaced in the
test), one loopback recorder stands for the direct server and one for each proxy variable, and whichever
recorder the request reaches is the decision httpx made. Nothing leaves 127.0.0.1 and no private httpx API is
used. The rows include the two NO_PROXY cases doctor used to get wrong (`.lan` with host `lan`, an address
range with an address inside it).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exobridge.core import proxies

pytestmark = pytest.mark.timeout(60)


@dataclass
class Recorder:
    """A TCP listener on 127.0.0.1 that records the first bytes of each connection, then answers 502."""

    name: str
    seen: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                self.seen.append(conn.recv(4096))  # recorded before the reply: no race with the client
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Recorder]]:
    """Recorders for direct, HTTP_PROXY, HTTPS_PROXY and ALL_PROXY; every host name resolves to 127.0.0.1."""
    real = socket.getaddrinfo

    def loopback_only(host: object, port: object, *args: object, **kwargs: object) -> object:
        return real("127.0.0.1", port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    recorders = {name: Recorder(name) for name in ("direct", "http", "https", "all")}
    yield recorders
    for recorder in recorders.values():
        recorder.close()


def make_client() -> httpx.Client:
    """The client exobridge really uses: built by core/http.py, proxies from the environment."""
    from exobridge.core import http

    return http.client()


def observe(url: str, recorders: dict[str, Recorder]) -> str:
    """Which recorder a GET of `url` reached, under the current process environment."""
    before = {name: len(r.seen) for name, r in recorders.items()}
    with make_client() as client, contextlib.suppress(httpx.HTTPError):
        client.get(url, timeout=5)
    reached = [name for name, r in recorders.items() if len(r.seen) > before[name]]
    assert len(reached) == 1, f"{url}: reached {reached}"
    return reached[0]


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


# (environment, url, where httpx sends it). {D} is the direct recorder's port; {http}/{https}/{all} proxies.
ALL_THREE = {"HTTP_PROXY": "{http}", "HTTPS_PROXY": "{https}", "ALL_PROXY": "{all}"}
ROWS = [
    ({"HTTP_PROXY": "{http}"}, "http://exo.test:{D}/", "http"),
    ({"HTTP_PROXY": "{http}"}, "https://exo.test:{D}/", "direct"),
    ({"HTTPS_PROXY": "{https}"}, "https://exo.test:{D}/", "https"),
    ({"HTTPS_PROXY": "{https}"}, "http://exo.test:{D}/", "direct"),
    ({"ALL_PROXY": "{all}", "HTTPS_PROXY": "{https}"}, "http://exo.test:{D}/", "all"),
    ({"ALL_PROXY": "{all}", "HTTPS_PROXY": "{https}"}, "https://exo.test:{D}/", "https"),
    # the two verdicts doctor used to get wrong:
    ({**ALL_THREE, "NO_PROXY": ".lan"}, "http://lan:{D}/", "http"),
    ({**ALL_THREE, "NO_PROXY": "192.168.0.0/16"}, "http://192.168.1.10:{D}/", "http"),
    ({**ALL_THREE, "NO_PROXY": ".lan"}, "http://exo.lan:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "lan"}, "http://lan:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "lan"}, "http://exo.lan:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "lan"}, "http://island:{D}/", "http"),
    ({**ALL_THREE, "NO_PROXY": "192.168.0.0/16"}, "http://192.168.0.0:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "*"}, "https://exo.test:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "example.org, *"}, "http://exo.test:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "localhost,127.0.0.1"}, "http://localhost:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "localhost,127.0.0.1"}, "http://exo.localhost:{D}/", "http"),
    ({**ALL_THREE, "NO_PROXY": "localhost,127.0.0.1"}, "http://127.0.0.1:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "::1"}, "http://[::1]:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "exo.test:{D}"}, "http://exo.test:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "exo.test:1"}, "http://exo.test:{D}/", "http"),
    ({**ALL_THREE, "NO_PROXY": "http://exo.test"}, "http://exo.test:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "http://exo.test"}, "https://exo.test:{D}/", "https"),
    ({**ALL_THREE, "NO_PROXY": "EXO.Lan"}, "http://exo.lan:{D}/", "direct"),
    ({**ALL_THREE, "NO_PROXY": "*.lan"}, "http://exo.lan:{D}/", "http"),
    ({"HTTP_PROXY": "{all}", "http_proxy": "{http}"}, "http://exo.test:{D}/", "http"),
    ({"HTTPS_PROXY": "{https}", "https_proxy": ""}, "https://exo.test:{D}/", "direct"),
    ({"HTTP_PROXY": "{http}", "REQUEST_METHOD": "GET"}, "http://exo.test:{D}/", "direct"),
    ({"http_proxy": "{http}", "REQUEST_METHOD": "GET"}, "http://exo.test:{D}/", "http"),
    ({"HTTP_PROXY": "127.0.0.1:{http_port}"}, "http://exo.test:{D}/", "http"),
]


def fill(text: str, recorders: dict[str, Recorder]) -> str:
    return text.format(
        D=recorders["direct"].port,
        **{name: f"http://127.0.0.1:{r.port}" for name, r in recorders.items()},
        **{f"{name}_port": r.port for name, r in recorders.items()},
    )


@pytest.mark.parametrize(("env", "url", "expected"), ROWS)
def test_the_route_doctor_reports_is_the_route_httpx_takes(
    network: dict[str, Recorder],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    url: str,
    expected: str,
) -> None:
    filled = {name: fill(value, network) for name, value in env.items()}
    set_env(monkeypatch, filled)
    url = fill(url, network)
    observed = observe(url, network)
    assert observed == expected
    route = proxies.from_env().route(url)
    predicted = (
        "direct"
        if route.proxy is None
        else next(name for name, r in network.items() if route.proxy.endswith(f":{r.port}"))
    )
    assert predicted == observed
    assert proxies.proxy_for(url, filled) == route.proxy  # an explicit mapping reads the same as os.environ


HOSTS = st.sampled_from(["lan", "exo.lan", "a.exo.lan", "island", "exo.test", "127.0.0.1", "10.0.0.5", "localhost"])
ENTRIES = st.sampled_from(
    ["lan", ".lan", "exo.lan", ".exo.lan", "*.lan", "10.0.0.5", "10.0.0.0/8", "localhost", "test", "exo.test:{D}"]
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(host=HOSTS, entries=st.lists(ENTRIES, max_size=3), scheme=st.sampled_from(["http", "https"]))
def test_random_no_proxy_lists_route_as_httpx_does(
    network: dict[str, Recorder], host: str, entries: list[str], scheme: str
) -> None:
    env = {name: fill(value, network) for name, value in ALL_THREE.items()}
    env["NO_PROXY"] = fill(",".join(entries), network)
    url = f"{scheme}://{host}:{network['direct'].port}/"
    with pytest.MonkeyPatch.context() as patch:
        set_env(patch, env)
        observed = observe(url, network)
    route = proxies.from_env(env).route(url)
    assert (route.proxy is None) == (observed == "direct")
    if route.proxy is not None:
        assert route.proxy.endswith(f":{network[observed].port}")


# --- validation -------------------------------------------------------------------------------------------


def proxy_error() -> type[Exception]:
    from exobridge.core.errors import ProxyError

    return ProxyError


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"HTTPS_PROXY": "http://[::1"}, "HTTPS_PROXY='http://[::1'"),
        ({"HTTP_PROXY": "::garbage::"}, "HTTP_PROXY='::garbage::'"),
        ({"ALL_PROXY": "ftp://proxy.example"}, "unsupported proxy scheme 'ftp'"),
        ({"HTTP_PROXY": "http://proxy.example:port"}, "HTTP_PROXY="),
        ({"HTTP_PROXY": "http://proxy.example:99999"}, "port 99999 out of range"),
        ({"HTTP_PROXY": "http://"}, "no proxy host"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "[::1]"}, "NO_PROXY entry '[::1]'"),
    ],
)
def test_a_setting_that_would_break_a_client_is_a_proxy_error(env: dict[str, str], names: str) -> None:
    with pytest.raises(proxy_error()) as caught:
        proxies.validate(env)
    message = str(caught.value)
    assert message.startswith("invalid proxy setting in the environment: ")
    assert names in message
    assert "\n" not in message


@given(
    st.dictionaries(
        st.text("ABCXYZabcxyz_-", min_size=1, max_size=12).filter(lambda n: not n.lower().endswith("_proxy")),
        st.sampled_from(["", "x", "http://[::1", "GET", "socks5://h:1"]),
        max_size=6,
    )
)
def test_without_a_proxy_variable_there_is_nothing_to_check(env: dict[str, str]) -> None:
    """core/http.py skips the proxy check (and this module's import) when no variable ends in _PROXY."""
    settings_ = proxies.validate({**env, "REQUEST_METHOD": "GET"})
    assert (settings_.proxies, settings_.no_proxy) == ((), ())


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy", "Https_Proxy", "all_PROXY"])
def test_a_client_refuses_a_broken_proxy_variable_in_any_case(name: str) -> None:
    from exobridge.core import http

    with pytest.raises(proxy_error(), match=name):
        http.client(env={name: "http://[::1"})


def test_socks_without_socksio_is_a_proxy_error_that_says_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxies, "socks_available", lambda: False)
    with pytest.raises(proxy_error(), match=r"ALL_PROXY='socks5://127\.0\.0\.1:1080'.*pip install 'httpx\[socks\]'"):
        proxies.validate({"ALL_PROXY": "socks5://127.0.0.1:1080"})


def test_a_password_in_a_proxy_url_is_never_shown() -> None:
    with pytest.raises(proxy_error()) as caught:
        proxies.validate({"HTTPS_PROXY": "ftp://user:s3cretpass@proxy.example:3128"})
    assert "s3cretpass" not in str(caught.value)
    assert "…@proxy.example:3128" in str(caught.value)
    assert proxies.display("http://u:p@h:1/x") == "http://…@h:1/x"
    assert proxies.display("h:1") == "h:1"


def test_no_proxy_star_turns_every_proxy_off_even_a_broken_one() -> None:
    settings_ = proxies.validate({"HTTPS_PROXY": "http://[::1", "NO_PROXY": "*"})
    assert settings_.bypass_all and settings_.any_set and settings_.in_use == ()
    assert settings_.route("https://openrouter.ai/api/v1").exempt_by == "*"


def test_the_route_names_the_variable_and_the_exempting_entry() -> None:
    env = {"https_proxy": "proxy.example:3128", "no_proxy": "localhost, .lan"}
    settings_ = proxies.from_env(env)
    assert settings_.no_proxy == ("localhost", ".lan")
    assert settings_.no_proxy_variable == "no_proxy"
    cloud = settings_.route("https://openrouter.ai/api/v1")
    assert (cloud.proxy, cloud.variable, cloud.proxied) == ("http://proxy.example:3128", "https_proxy", True)
    exo = settings_.route("https://exo.lan:52415")
    assert (exo.proxy, exo.exempt_by) == (None, ".lan")
    assert proxies.from_env({}).route("http://x").proxy is None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client the property below builds (making one per client is most of its cost;
    the proxy settings are read the same either way)."""
    return ssl.create_default_context()


@settings(max_examples=60, deadline=None)
@given(value=st.text(alphabet="ab:/[]@%. 1-_*é", min_size=1, max_size=20))
def test_every_proxy_value_httpx_refuses_is_refused_by_validate(value: str) -> None:
    """The guard for settings nobody listed: validate() is at least as strict as building a client."""
    env = {"HTTPS_PROXY": value}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HTTPS_PROXY", value)
        try:
            httpx.Client(trust_env=True, verify=tls_context()).close()
            httpx_refuses = False
        except (ValueError, ImportError, httpx.InvalidURL):
            httpx_refuses = True
    if httpx_refuses:
        with pytest.raises(proxy_error()):
            proxies.validate(env)
