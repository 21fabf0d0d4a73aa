"""Network checks: whether requests to a local server (a cluster node, or any provider on this machine or the
LAN) would go through a proxy. The verdict is core/proxies' `route()`, which is httpx's own decision for the
same url and environment: `NO_PROXY=.lan` does NOT cover the host `lan`, and an address range such as
`192.168.0.0/16` covers no address but `192.168.0.0` itself (httpx does not read ranges)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from exobridge.core import proxies
from exobridge.core.doctor.results import FAIL, OK, CheckResult, Section

if TYPE_CHECKING:
    from exobridge.core.config import Config

NET = Section.NETWORK
LOCAL_SUFFIXES = (".local", ".lan", ".internal", ".home.arpa", ".localhost")


def is_local_host(host: str) -> bool:
    """A host on this machine or the local network: loopback, a private or link-local address, `localhost`,
    a name without a dot, or a name under a local-only suffix. A proxy there is almost always a mistake."""
    host = host.strip("[]").lower()
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host or host.endswith(LOCAL_SUFFIXES)
    return address.is_loopback or address.is_private or address.is_link_local


def check_proxy(config: Config, env: Mapping[str, str]) -> list[CheckResult]:
    """Local providers must be reached directly; a setting httpx cannot use is a failure of its own."""
    from exobridge.core.errors import ProxyError

    settings = proxies.from_env(env)
    if not settings.any_set:
        return [CheckResult("network.proxy", NET, OK, "no proxy set in the environment")]
    try:
        settings.validate()
    except ProxyError as exc:
        return [
            CheckResult(
                "network.proxy", NET, FAIL, str(exc), "fix or unset the variable it names (e.g. unset HTTPS_PROXY)"
            )
        ]
    names = ", ".join(dict.fromkeys(p.variable.upper() for p in settings.proxies))
    local_urls: dict[str, str] = {}  # host -> a url of it
    for provider in config.ordered():
        for url in provider.urls:
            host = urlsplit(url).hostname or ""
            if host and is_local_host(host):
                local_urls.setdefault(host, url)
    exposed = {host: settings.route(url) for host, url in local_urls.items()}
    exposed = {host: route for host, route in exposed.items() if route.proxied}
    if not exposed:
        exempt = f" ({', '.join(local_urls)} exempt by NO_PROXY)" if local_urls else ""
        return [CheckResult("network.proxy", NET, OK, f"{names} set{exempt}")]
    through = sorted({route.variable.upper() for route in exposed.values() if route.variable})
    current = ",".join(settings.no_proxy)
    wanted = ",".join(dict.fromkeys(["localhost", "127.0.0.1", *(h for h in exposed if h not in settings.no_proxy)]))
    value = f"{current},{wanted}" if current else wanted
    return [
        CheckResult(
            "network.proxy",
            NET,
            FAIL,
            f"{names} set and NO_PROXY does not cover {', '.join(exposed)}: requests to local servers would go "
            f"through the proxy ({', '.join(through)})",
            f'export NO_PROXY="{value}"',
        )
    ]
