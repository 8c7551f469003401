"""Where atende may send the HTTP requests its users point it at (result webhooks, HTTP
tools, model and speech base URLs): public addresses only, unless the operator allows
private ones. Checked when a URL is configured (a literal address, a local name, a
password in the URL) and again when connecting, on the addresses the name resolves to —
so a name that resolves to 127.0.0.1, or changes to it later, is refused too. Without
this, a webhook URL is a port scanner of the machine and its network (the delivery
history reports each port's answer)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class EgressPolicy:
    """Which addresses outgoing requests may reach. ``allow``: "" (public ones only, the
    default), "all" (any: a lab, or a CRM on the LAN) or private CIDRs allowed beside the
    public addresses ("10.1.0.0/16,192.168.1.20/32")."""

    def __init__(self, allow: str = "") -> None:
        text = allow.strip().lower()
        self.everything = text in ("all", "true", "yes", "1")
        self.networks = () if self.everything or not text else tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in text.split(",") if part.strip())

    def refusal(self, ip: IpAddress) -> str | None:
        """Why ``ip`` may not be reached, or None."""
        if self.everything:
            return None
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        real = mapped or ip
        if real.is_global and not real.is_multicast:
            return None
        if any(real.version == n.version and real in n for n in self.networks):
            return None
        kind = ("loopback" if real.is_loopback else "link-local" if real.is_link_local
                else "private" if real.is_private else "not public")
        return (f"{real} is a {kind} address (set ATENDE_ALLOW_PRIVATE_URLS to reach "
                "private addresses)")

    def check_url(self, url: str, schemes: Iterable[str] = ("http", "https")) -> str | None:
        """Why ``url`` may not be configured, or None (its name is checked again, resolved,
        when it is used)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            parts.port  # noqa: B018  (raises ValueError for a bad one)
        except ValueError as exc:
            return f"not a URL ({exc})"
        if parts.scheme.lower() not in tuple(schemes):
            return f"use {' or '.join(schemes)}"
        if parts.username is not None or parts.password is not None:
            return "credentials in the URL are not taken: put them in a header"
        if not host:
            return "the URL has no host"
        ip = literal_address(host)
        if ip is not None:
            return self.refusal(ip)
        if not self.everything and (host.rstrip(".").lower() in _LOCAL_NAMES
                                    or host.rstrip(".").lower().endswith(".localhost")):
            return f"{host} is this machine (set ATENDE_ALLOW_PRIVATE_URLS to reach it)"
        return None

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` that may be reached; ConnectError when none may."""
        ip = literal_address(host)
        if ip is not None:
            found = [str(ip)]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
            found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in found if self.refusal(ipaddress.ip_address(a)) is None]
        if not allowed:
            why = self.refusal(ipaddress.ip_address(found[0])) if found else "no address"
            raise httpcore.ConnectError(f"refused to connect to {host}: {why}")
        return allowed


def literal_address(host: str) -> IpAddress | None:
    """``host`` as an IP address, in any form a resolver would take for one (0x7f000001,
    2130706433, 0177.0.0.1, [::1]), or None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:  # the legacy IPv4 forms inet_aton accepts, as getaddrinfo does
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, to the very address it checked (no
    second lookup that could answer differently)."""

    def __init__(self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self.policy = policy
        self.inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        allowed = await self.policy.addresses(host, port)
        return await self.inner.connect_tcp(allowed[0], port, timeout, local_address,
                                            socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reached from user URLs")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_client(policy: EgressPolicy, **options: Any) -> httpx.AsyncClient:
    """An HTTP client for URLs users configure: every connection passes ``policy``.
    Proxies from the environment are not used (they would be what is checked)."""
    transport = httpx.AsyncHTTPTransport(
        trust_env=False, limits=options.pop("limits", httpx.Limits()))
    # httpx takes no network backend; its pool does (the one private name used here).
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    pool._network_backend = _GuardedBackend(policy, pool._network_backend)
    return httpx.AsyncClient(transport=transport, trust_env=False, **options)
