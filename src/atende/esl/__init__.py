"""FreeSWITCH's Event Socket protocol, sans-IO: messages cut from the byte stream, events
read, commands written. The asyncio side is channels/freeswitch/."""
