"""Sans-IO SIP core (RFC 3261) plus thin asyncio transports and the user agent."""
