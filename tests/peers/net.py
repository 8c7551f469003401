"""Loopback ports for test servers."""

from __future__ import annotations

import socket


def free_port(pair: bool = False) -> int:
    """A UDP+TCP port free on 127.0.0.1 (with ``pair``, the next one is free too)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
        ports = [port, port + 1] if pair else [port]
        ok = True
        socks = []
        try:
            for p in ports:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        finally:
            for s in socks:
                s.close()
        if ok:
            return port
    raise RuntimeError("no free port")
