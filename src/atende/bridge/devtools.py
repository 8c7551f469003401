"""Opening the bridge's calling page in a remote Chrome through the DevTools Protocol
(``chromeRemoteURL``), for deployments where the browser that speaks is a headless one.

``chromeRemoteURL`` is Chrome's remote-debugging address (``--remote-debugging-port``):
``ws://host:port``, whose browser endpoint is asked at ``http://host:port/json/version``,
or the endpoint itself (``ws://host:port/devtools/browser/<id>``). Three commands are
sent on the browser's session: the page's origin is given the microphone
(``Browser.grantPermissions``), the page is opened in a new tab (``Target.createTarget``)
and, when the call is over, that tab is closed (``Target.closeTarget``)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

TIMEOUT_S = 5.0


class DevToolsError(Exception):
    """Chrome could not be reached, or refused a command (the reason in words)."""


async def browser_endpoint(remote: str) -> str:
    """The browser's DevTools WebSocket for ``remote``."""
    parts = urlsplit(remote)
    if parts.path.startswith("/devtools/"):
        return remote
    scheme = "https" if parts.scheme == "wss" else "http"
    version = urlunsplit((scheme, parts.netloc, "/json/version", "", ""))
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S, trust_env=False,
                                     follow_redirects=False) as client:
            resp = await client.get(version)
        found = resp.json().get("webSocketDebuggerUrl") if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise DevToolsError(f"Chrome at {remote} did not answer {version}: "
                            f"{str(exc) or type(exc).__name__}") from None
    if not isinstance(found, str) or not found.startswith(("ws://", "wss://")):
        raise DevToolsError(f"Chrome at {remote} gave no browser endpoint at {version} "
                            f"(HTTP {resp.status_code})")
    # Chrome names its endpoint by the address it listens on; reach it where we reached it.
    at = urlsplit(found)
    return urlunsplit((at.scheme, parts.netloc, at.path, "", ""))


async def _commands(remote: str, commands: list[tuple[str, dict[str, Any]]]
                    ) -> list[dict[str, Any]]:
    """Send ``commands`` in order on the browser's session; their results."""
    endpoint = await browser_endpoint(remote)
    ids = itertools.count(1)
    results = []
    try:
        async with connect(endpoint, open_timeout=TIMEOUT_S, close_timeout=1,
                           max_size=2**22) as ws:
            for method, params in commands:
                n = next(ids)
                await ws.send(json.dumps({"id": n, "method": method, "params": params}))
                while True:  # events may come before the answer: skip them
                    msg = json.loads(await _recv(ws))
                    if msg.get("id") == n:
                        break
                if "error" in msg:
                    raise DevToolsError(f"Chrome refused {method}: "
                                        f"{msg['error'].get('message', msg['error'])}")
                results.append(msg.get("result") or {})
    except (OSError, InvalidHandshake, InvalidURI, ConnectionClosed, TimeoutError,
            ValueError) as exc:
        raise DevToolsError(f"cannot talk to Chrome at {remote}: "
                            f"{str(exc) or type(exc).__name__}") from None
    return results


async def _recv(ws: ClientConnection) -> str | bytes:
    async with asyncio.timeout(TIMEOUT_S):
        return await ws.recv()


async def open_page(remote: str, url: str) -> str:
    """Open ``url`` in a new tab of the Chrome at ``remote``, its microphone allowed;
    the tab's target id."""
    parts = urlsplit(url)
    origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    _, created = await _commands(remote, [
        ("Browser.grantPermissions", {"origin": origin, "permissions": ["audioCapture"]}),
        ("Target.createTarget", {"url": url})])
    target = created.get("targetId")
    if not isinstance(target, str):
        raise DevToolsError("Chrome opened no tab")
    return target


async def close_page(remote: str, target: str) -> None:
    """Close the tab ``target`` (gone already: nothing to do)."""
    try:
        await _commands(remote, [("Target.closeTarget", {"targetId": target})])
    except DevToolsError as exc:
        if "No target" not in str(exc):
            raise
