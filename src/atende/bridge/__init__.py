"""The SIP bridge (seed 004): joins calls from another voice network to a SIP server,
both ways, as a B2BUA on a port of its own (``settings.py`` what it is configured with,
``gate.py`` who may call it, ``calls.py`` each call's two legs, ``listener.py`` its SIP
side, ``service.py`` the configuration applied live and its status)."""
