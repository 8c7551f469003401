"""Telephony policy: trunks, number formats, inbound routing and guards."""
