"""The commands atende sends FreeSWITCH over the Event Socket (mod_event_socket), as bytes.
A command is a line and optional headers ending in a blank line; a line break inside a
value would end it and start another command of the caller's choosing, so values with one
are refused (a long or multi-line application argument travels as a body)."""

from __future__ import annotations

from collections.abc import Iterable


def _clean(*values: str) -> None:
    for v in values:
        if "\n" in v or "\r" in v:
            raise ValueError(f"a line break cannot go into an ESL command: {v[:40]!r}")


def command(line: str, headers: Iterable[tuple[str, str]] = (), body: str = "") -> bytes:
    """``line``, its headers, and a body (with its Content-Length) when there is one."""
    pairs = list(headers)
    _clean(line, *(n for n, _ in pairs), *(v for _, v in pairs))
    if body:
        raw = body.encode()
        pairs += [("content-type", "text/plain"), ("content-length", str(len(raw)))]
    text = line + "".join(f"\n{n}: {v}" for n, v in pairs) + "\n\n"
    return text.encode() + (body.encode() if body else b"")


def auth(password: str) -> bytes:
    return command(f"auth {password}")


def connect() -> bytes:
    """Outbound mode's first command: the reply carries the channel's data."""
    return command("connect")


def myevents(fmt: str = "plain") -> bytes:
    """This channel's events (CHANNEL_*, DTMF …), not CUSTOM ones."""
    return command(f"myevents {fmt}")


def events(names: Iterable[str], custom: Iterable[str] = (), fmt: str = "plain") -> bytes:
    """Subscribe to ``names`` and CUSTOM ``custom`` subclasses."""
    subs = list(custom)
    words = [*names, *(["CUSTOM", *subs] if subs else [])]
    return command(f"event {fmt} {' '.join(words)}")


def linger(seconds: int | None = None) -> bytes:
    """Keep the socket after the hangup until its last events are read."""
    return command("linger" if seconds is None else f"linger {seconds}")


def api(cmd: str) -> bytes:
    """A blocking API call: the answer is an api/response."""
    return command(f"api {cmd}")


def bgapi(cmd: str, job_uuid: str) -> bytes:
    """A background API call: its result comes as a BACKGROUND_JOB with this Job-UUID."""
    return command(f"bgapi {cmd}", [("Job-UUID", job_uuid)])


def execute(app: str, arg: str = "", uuid: str | None = None, lock: bool = True,
            event_uuid: str | None = None) -> bytes:
    """Run a dialplan application on the channel (``sendmsg`` execute). ``lock``: strictly
    after what was queued before it; ``event_uuid`` comes back as Application-UUID on its
    CHANNEL_EXECUTE_COMPLETE."""
    headers = [("call-command", "execute"), ("execute-app-name", app)]
    if lock:
        headers.append(("event-lock", "true"))
    if event_uuid:
        headers.append(("event-uuid", event_uuid))
    multi_line = "\n" in arg or "\r" in arg or len(arg) > 2048
    if arg and not multi_line:
        headers.append(("execute-app-arg", arg))
    return command(f"sendmsg {uuid}" if uuid else "sendmsg", headers,
                   body=arg if multi_line else "")


def hangup(cause: str = "NORMAL_CLEARING", uuid: str | None = None) -> bytes:
    return command(f"sendmsg {uuid}" if uuid else "sendmsg",
                   [("call-command", "hangup"), ("hangup-cause", cause)])
