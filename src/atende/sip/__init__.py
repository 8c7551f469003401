"""Sans-IO SIP core (RFC 3261): parsing, transactions, dialogs, registration, digest,
SDP. Nothing here touches a socket or reads a clock; the asyncio parts are in
``atende.channels.sip``."""
