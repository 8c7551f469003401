"""Sans-IO SIP core (RFC 3261): parsing, transactions, dialogs, registration, digest,
SDP. Nothing here touches a socket or reads a clock; the asyncio parts are in
``atende.channels.sip``.

`make install` compiles these modules with mypyc (scripts/compile-native.py): the same
code, about half the cost of parsing a message. ``COMPILED`` says whether this process
runs that build; while it is missing or older than a source, the sources run
(``atende.native``)."""

from atende.native import use_build

COMPILED = use_build(__name__)
