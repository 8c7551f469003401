"""The trunk form of seeds 000/001, as the dashboard shows and reads it: the choices (type,
transport, number format, inbound authentication, country), each number format's example
for a country, and a posted form turned into the API's own TrunkCreate/TrunkUpdate (so the
same rules check both, and their words reach the user by field)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import geocoder
from pydantic import ValidationError

from atende.api.trunk_fields import Kind, TrunkCreate, TrunkOut, TrunkUpdate
from atende.dashboard.web import problems_of, whole
from atende.telephony.numbers import NumberError, NumberFormat, format_for_trunk

KINDS = (
    (Kind.EXTENSION.value, "SIP extension",
     "you already have a SIP credential (an extension) from your PBX or VoIP provider: "
     "atende registers with it"),
    (Kind.DID.value, "Phone number (DID)",
     "a dedicated number from your carrier: its calls are sent to atende's SIP address"),
    (Kind.FREESWITCH.value, "Through FreeSWITCH",
     "outbound calls placed by FreeSWITCH over its event socket (ESL_HOST)"),
)
FORMATS = (
    (NumberFormat.INTL_PLUS.value, "International with +"),
    (NumberFormat.INTL_NO_PLUS.value, "International without +"),
    (NumberFormat.NATIONAL.value, "National"),
)
TRANSPORTS = ("udp", "tcp", "tls")
# What a posted form may set, by type (the rest of the form is ignored, so a field left
# in a hidden section cannot reach a trunk of another type).
SIP_FIELDS = ("name", "number", "username", "password", "host", "port", "transport",
              "domain", "outbound_proxy", "number_format", "country", "inbound_auth",
              "allowed_ips", "assistant_id", "max_concurrent_calls", "allowed_countries",
              "tls_verify", "accept_transfers", "enabled")
BY_KIND = {
    Kind.EXTENSION.value: (*SIP_FIELDS, "extension_pattern"),
    Kind.DID.value: SIP_FIELDS,
    Kind.FREESWITCH.value: ("name", "number", "number_format", "country", "dial_string",
                            "assistant_id", "max_concurrent_calls", "allowed_countries",
                            "extension_pattern", "enabled"),
}
SWITCHES = ("tls_verify", "accept_transfers", "enabled")


@functools.cache
def countries() -> list[tuple[str, str]]:
    """(code, English name) of every region phone numbers exist for, by name."""
    out = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        example = phonenumbers.example_number(region)
        name = geocoder.country_name_for_number(example, "en") if example else ""
        out.append((region, name or region))
    return sorted(out, key=lambda c: c[1])


@dataclass(frozen=True)
class FormatExample:
    """A number format, and a country's example number written in it."""

    value: str
    label: str
    written: str  # how the example number is written in this format
    request_uri: str


def format_examples(country: str, host: str) -> list[FormatExample]:
    """Each number format with the country's example number, as the trunk would dial it."""
    example = phonenumbers.example_number_for_type(
        country, phonenumbers.PhoneNumberType.MOBILE) or phonenumbers.example_number(country)
    host = host or "sip.provider.com"
    out = []
    for value, label in FORMATS:
        written = "—"
        if example is not None:
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            try:
                written = format_for_trunk(e164, country, value)
            except NumberError:
                pass
        out.append(FormatExample(value, label, written, f"sip:{written}@{host}"))
    return out


@dataclass
class Posted:
    """A trunk form as posted: what it says (to show it again) and the problems found,
    by field ("" for the form as a whole)."""

    values: dict[str, Any]
    problems: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _split(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,;]+", text) if p]


def read_form(form: dict[str, list[str]], kind: str, editing: bool) -> tuple[
        Posted, dict[str, Any]]:
    """The posted form as the API's fields for a trunk of ``kind``: (what was posted and
    its problems, the fields to give TrunkCreate/TrunkUpdate). On an edit an empty
    password keeps the current one, an empty optional field clears it, and an emptied
    required one is refused by the service in words."""
    def one(key: str) -> str:
        return (form.get(key) or [""])[0].strip()

    values: dict[str, Any] = {"kind": kind}
    fields: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for key in BY_KIND.get(kind, ()):
        if key in SWITCHES:
            values[key] = fields[key] = one(key) == "on"
            continue
        text = one(key) if key != "password" else (form.get(key) or [""])[0]
        values[key] = text if key != "password" else ""
        if key == "allowed_ips":
            fields[key] = _split(text)
        elif key == "allowed_countries":
            # Empty means the trunk's own country, as the form says.
            fields[key] = _split(text) or ([one("country")] if editing else None)
        elif key == "outbound_proxy":
            # The switch of the seeds: off means no proxy, whatever the field says.
            on = one("use_outbound_proxy") == "on"
            values["use_outbound_proxy"] = on
            if on and not text:
                problems[key] = "give the outbound proxy's address, or switch it off"
            fields[key] = text if on and text else None
        elif key in ("port", "max_concurrent_calls"):
            if text and whole(text) is None:
                problems[key] = f"{key.replace('_', ' ')}: a whole number"
            else:
                fields[key] = whole(text)
        elif key == "password" and editing and not text:
            continue  # unchanged
        else:
            fields[key] = text or None
    if not editing and kind not in BY_KIND:
        problems["kind"] = "choose the type of trunk"
    return Posted(values, problems), fields


def checked(posted: Posted, fields: dict[str, Any], editing: bool
            ) -> TrunkCreate | TrunkUpdate | None:
    """The form's fields through the API's model, its complaints added to ``posted``."""
    if not posted.ok:
        return None
    try:
        if editing:
            return TrunkUpdate.model_validate(fields)
        return TrunkCreate.model_validate({"kind": posted.values["kind"], **fields})
    except ValidationError as exc:
        posted.problems.update(problems_of(exc, BY_KIND.get(posted.values["kind"], ())))
        return None


def values_of(trunk: TrunkOut) -> dict[str, Any]:
    """A trunk as the form shows it for editing (the password never)."""
    values = trunk.model_dump()
    values["password"] = ""
    values["use_outbound_proxy"] = trunk.outbound_proxy is not None
    values["allowed_ips"] = "\n".join(trunk.allowed_ips)
    values["allowed_countries"] = ", ".join(trunk.allowed_countries)
    for key in ("port", "domain", "outbound_proxy", "extension_pattern", "dial_string",
                "assistant_id"):
        values[key] = values[key] if values[key] is not None else ""
    return values


def state_words(trunk: TrunkOut) -> tuple[str, str]:
    """(a word for colour and icon: ok, wait, bad, off, the state in plain words)."""
    if not trunk.enabled:
        return "off", "Switched off: no calls in or out"
    reg = trunk.registration
    if trunk.kind == Kind.DID.value:
        return "ok", "Ready: calls to the number reach atende's SIP address below"
    if trunk.kind == Kind.FREESWITCH.value:
        return "ok", "Ready: outbound calls go through FreeSWITCH"
    if reg is None:
        return "wait", "Starting"
    if reg.state == "registered":
        return "ok", f"Connected: registered with {trunk.host}"
    if reg.state == "registering":
        return "wait", f"Connecting to {trunk.host}…"
    if reg.state == "failed":
        return "bad", f"Not connected: {reg.reason}"
    # Switched on but not (yet) registering: its agent is starting, or between tries.
    return "wait", f"Not registered yet with {trunk.host}: {reg.reason}"
