"""The native SIP/RTP channel: the asyncio side of the SIP core (``atende.sip``).

`make install` compiles these modules with mypyc, with the SIP core and the media plane
(``atende.native``); ``COMPILED`` says whether this process runs that build."""

from atende.native import use_build

COMPILED = use_build(__name__)
