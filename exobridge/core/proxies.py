"""Proxy settings from the environment, read in one place, with exactly the routing decision httpx makes.

exobridge's httpx clients use `trust_env=True`, so httpx itself picks a proxy for each request from
`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (any case; a lowercase variable wins over its
uppercase twin, and an empty lowercase one unsets it, as in `urllib.request.getproxies`). This module
re-implements that rule from public inputs only (the environment and `httpx.URL`), so that `doctor` can say
which url goes through which proxy and be right, and so that a broken setting is refused before any request.

httpx's rule (0.28), which `route()` follows and tests/test_proxies.py holds equal by observing real clients:
- `HTTP_PROXY` applies to `http://` urls, `HTTPS_PROXY` to `https://`, `ALL_PROXY` to both; a value without
  `://` means `http://VALUE`.
- `NO_PROXY` is a comma-separated list. `*` anywhere turns every proxy off. Otherwise each entry exempts:
  `.example.com` → hosts strictly under example.com (NOT `example.com` itself); `example.com` → example.com
  and every host under it; `localhost`, an IPv4 or IPv6 address → that exact host only (an address range such
  as `192.168.0.0/16` is NOT understood as a range: it exempts only the host `192.168.0.0`); `host:port` →
  only that port; an entry with `://` is a url pattern (`http://example.com`).
- The most specific pattern wins (one with a port first, then the longest host, then the longest scheme).

On macOS and Windows, httpx also reads the system proxy settings when no variable is set; that is not modelled
here (exobridge documents the variables).

`validate()` raises `errors.ProxyError` ("invalid proxy setting in the environment: …", exit 4) for what
would break a client or a request: a malformed proxy url or NO_PROXY entry, an unknown proxy scheme, a port out
of range, a proxy without a host, and a `socks5://` proxy when `socksio` is not installed (with the fix).
Passwords in proxy urls are never shown: `display()` replaces the user part with `…`.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

PROXY_SCHEMES = ("http", "https", "all")  # the `<scheme>_proxy` variables httpx reads
SOCKS_SCHEMES = ("socks5", "socks5h")
PROXY_URL_SCHEMES = ("http", "https", *SOCKS_SCHEMES)
SOCKS_FIX = "install SOCKS support (pip install 'httpx[socks]'), or use an http:// proxy"


@dataclass(frozen=True)
class EnvProxy:
    """One proxy variable in effect: `scheme` is http, https or all; `url` is what httpx uses."""

    scheme: str
    url: str
    variable: str  # the variable it came from, as spelt in the environment (e.g. HTTPS_PROXY)
    value: str = ""  # the variable's value as written


@dataclass(frozen=True)
class Route:
    """How a request to one url travels: through `proxy` (from `variable`), or direct (`exempt_by` says why)."""

    url: str
    proxy: str | None = None
    variable: str | None = None
    exempt_by: str | None = None  # the NO_PROXY entry (or "*") that exempts the url, when one does

    @property
    def proxied(self) -> bool:
        return self.proxy is not None


@dataclass(frozen=True)
class _Pattern:
    """A url pattern as httpx's mount keys work: scheme ('' = any), host ('' = any), port (None = any)."""

    key: str
    scheme: str
    host: str
    port: int | None
    host_regex: re.Pattern[str] | None
    proxy: EnvProxy | None  # None: go direct
    entry: str | None  # the NO_PROXY entry that made it

    @property
    def priority(self) -> tuple[int, int, int]:
        return (0 if self.port is not None else 1, -len(self.host), -len(self.scheme))

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        if self.scheme and self.scheme != scheme:
            return False
        if self.host and self.host_regex is not None and not self.host_regex.match(host):
            return False
        return self.port is None or self.port == port


@dataclass(frozen=True)
class ProxySettings:
    """The proxy variables in effect and the NO_PROXY entries, as read from one environment."""

    proxies: tuple[EnvProxy, ...] = ()
    no_proxy: tuple[str, ...] = ()  # the entries as written, stripped, empty ones dropped
    no_proxy_variable: str | None = None

    @property
    def bypass_all(self) -> bool:
        """`NO_PROXY` holds `*`: httpx uses no proxy at all."""
        return "*" in self.no_proxy

    @property
    def any_set(self) -> bool:
        """A proxy variable is set (whether or not NO_PROXY turns it off)."""
        return bool(self.proxies)

    @property
    def in_use(self) -> tuple[EnvProxy, ...]:
        """The proxies httpx will actually use (none under `NO_PROXY=*`)."""
        return () if self.bypass_all else self.proxies

    def route(self, url: str) -> Route:
        """The decision httpx makes for `url`. Raises `errors.ProxyError` when the settings cannot be used."""
        if self.bypass_all:
            return Route(url, exempt_by="*")
        if not self.proxies:
            return Route(url)
        import httpx

        target = httpx.URL(url)
        for pattern in self._patterns():
            if pattern.matches(target.scheme, target.host, target.port):
                if pattern.proxy is None:
                    return Route(url, exempt_by=pattern.entry)
                return Route(url, proxy=pattern.proxy.url, variable=pattern.proxy.variable)
        return Route(url)

    def proxy_for(self, url: str) -> str | None:
        """The proxy url httpx sends a request for `url` through, or None for a direct connection."""
        return self.route(url).proxy

    def validate(self) -> ProxySettings:
        """Raise `errors.ProxyError` for a setting that would break a client or a request; returns self."""
        if self.bypass_all:
            return self  # httpx ignores every proxy variable then, broken or not
        for proxy in self.proxies:
            _check_proxy_url(proxy)
        self._patterns()
        return self

    def _patterns(self) -> list[_Pattern]:
        """httpx's mounts for these settings, most specific first (stable among equals, as httpx sorts)."""
        mounts: dict[str, tuple[EnvProxy | None, str | None]] = {}
        for proxy in self.proxies:
            mounts[f"{proxy.scheme}://"] = (proxy, None)
        for entry in self.no_proxy:
            mounts[_no_proxy_key(entry)] = (None, entry)
        patterns = [_pattern(key, proxy, entry, self.no_proxy_variable) for key, (proxy, entry) in mounts.items()]
        return sorted(patterns, key=lambda p: p.priority)


def from_env(env: Mapping[str, str] | None = None) -> ProxySettings:
    """Read the proxy variables the way `urllib.request.getproxies_environment` (and so httpx) does."""
    env = os.environ if env is None else env
    values: dict[str, tuple[str, str]] = {}  # scheme -> (value, variable)
    # Two passes, as urllib: any case first, then lowercase names only, which win (and unset when empty).
    for name, value in env.items():
        lowered = name.lower()
        if value and lowered.endswith("_proxy"):
            values[lowered[:-6]] = (value, name)
    if "REQUEST_METHOD" in env:  # CVE-2016-1000110: a CGI script ignores HTTP_PROXY (the header Proxy:)
        values.pop("http", None)
    for name, value in env.items():
        if name.endswith("_proxy"):
            if value:
                values[name[:-6].lower()] = (value, name)
            else:
                values.pop(name[:-6].lower(), None)
    proxies = []
    for scheme in PROXY_SCHEMES:
        if scheme in values:
            value, variable = values[scheme]
            proxies.append(EnvProxy(scheme, value if "://" in value else f"http://{value}", variable, value))
    raw_no_proxy, no_proxy_variable = values.get("no", ("", None))
    entries = tuple(entry.strip() for entry in raw_no_proxy.split(",") if entry.strip())
    return ProxySettings(tuple(proxies), entries, no_proxy_variable)


def validate(env: Mapping[str, str] | None = None) -> ProxySettings:
    """The settings of `env` (default: this process's), or `errors.ProxyError` when they cannot be used."""
    return from_env(env).validate()


def proxy_for(url: str, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy httpx would send a request for `url` through with this environment, or None (direct)."""
    return from_env(env).proxy_for(url)


def display(proxy_url: str) -> str:
    """A proxy url fit to show: any `user:password@` becomes `…@`."""
    scheme, sep, rest = proxy_url.partition("://")
    if not sep:
        scheme, rest = "", proxy_url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "…@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{slash}{path}"


def socks_available() -> bool:
    return importlib.util.find_spec("socksio") is not None


# --- internals ----------------------------------------------------------------------------------------------


def _error(problem: str) -> Exception:
    from exobridge.core.errors import ProxyError

    return ProxyError(f"invalid proxy setting in the environment: {problem}")


def _is_ip(text: str, version: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]) -> bool:
    try:
        version(text.split("/")[0])
    except ValueError:
        return False
    return True


def _no_proxy_key(entry: str) -> str:
    """The mount key httpx makes of one NO_PROXY entry (see the module docstring)."""
    if "://" in entry:
        return entry
    if _is_ip(entry, ipaddress.IPv4Address):
        return f"all://{entry}"
    if _is_ip(entry, ipaddress.IPv6Address):
        return f"all://[{entry}]"
    if entry.lower() == "localhost":
        return f"all://{entry}"
    return f"all://*{entry}"


def _pattern(key: str, proxy: EnvProxy | None, entry: str | None, no_proxy_variable: str | None) -> _Pattern:
    import httpx

    try:
        url = httpx.URL(key)
    except (httpx.InvalidURL, ValueError) as exc:
        raise _error(f"{no_proxy_variable or 'NO_PROXY'} entry {entry or key!r}: {exc}") from None
    host = "" if url.host == "*" else url.host
    regex: re.Pattern[str] | None
    if not url.host or url.host == "*":
        regex = None
    elif url.host.startswith("*."):
        regex = re.compile(f"^.+\\.{re.escape(url.host[2:])}$")
    elif url.host.startswith("*"):
        regex = re.compile(f"^(.+\\.)?{re.escape(url.host[1:])}$")
    else:
        regex = re.compile(f"^{re.escape(url.host)}$")
    scheme = "" if url.scheme == "all" else url.scheme
    return _Pattern(key, scheme, host, url.port, regex, proxy, entry)


def _check_proxy_url(proxy: EnvProxy) -> None:
    import httpx

    where = f"{proxy.variable}={display(proxy.value or proxy.url)!r}"
    try:
        url = httpx.URL(proxy.url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise _error(f"{where}: {exc}") from None
    if url.scheme not in PROXY_URL_SCHEMES:
        schemes = ", ".join(f"{s}://" for s in PROXY_URL_SCHEMES)
        raise _error(f"{where}: unsupported proxy scheme {url.scheme!r} (use {schemes})")
    if not url.host:
        raise _error(f"{where}: no proxy host")
    if url.port is not None and not 0 < url.port < 65536:
        raise _error(f"{where}: port {url.port} out of range")
    if url.scheme in SOCKS_SCHEMES and not socks_available():
        raise _error(f"{where}: SOCKS proxies need the socksio package: {SOCKS_FIX}")
