"""Loopback ports for test servers."""

from __future__ import annotations

import itertools
import os
import socket

# Below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 on
# Debian), so that no client socket opened between picking a port and binding it can
# take it: a port the kernel handed out for "port 0" was free when picked but could be
# any connection's source port a moment later (CI lost a run to that). Clear of the
# fixed RTP ranges the tests give atende (20000-26999, 31400-31999) and the media tests
# (31000-31299).
_LOW, _HIGH = 27000, 30999
_next = itertools.count(os.getpid() % (_HIGH - _LOW))


def _bindable(port: int) -> bool:
    socks = []
    try:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(pair: bool = False) -> int:
    """A UDP+TCP port free on 127.0.0.1 (with ``pair``, the next one is free too), never
    one handed out before in this process."""
    for _ in range(_HIGH - _LOW):
        port = _LOW + next(_next) % (_HIGH - _LOW)
        if pair:
            if port + 1 > _HIGH:
                continue
            next(_next)
        if all(_bindable(p) for p in ([port, port + 1] if pair else [port])):
            return port
    raise RuntimeError("no free port")
