"""Decides what happens to each call and keeps its record: routes an incoming call to an
assistant, runs the agent session on the answered leg, stores turns and the outcome."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from datetime import datetime
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from atende.agent.assistant import greeting, session_for
from atende.agent.brain import RuleSet, render
from atende.agent.profile import AssistantProfile
from atende.agent.turns import Turn
from atende.aio import BackgroundTasks, all_before
from atende.calls.assistant_rows import profile_of
from atende.calls.automation import Callback, CallJob, dial_outcome, rules_for, summarize
from atende.calls.events import finished_data
from atende.calls.live import LiveCall, LiveCalls
from atende.calls.queue import end_attempt, requeue, retry_data
from atende.calls.records import CallRecords
from atende.calls.retry import next_attempt_at
from atende.calls.transfers import Transfers, outbound_info
from atende.channels.dialer import Dialer, DialError, DialOutcome, DialRequest, PreparedDial
from atende.channels.leg import (
    CallInfo,
    CallLeg,
    Refused,
    Rejection,
    Ringing,
    TransferResult,
)
from atende.media.recording import WavRecorder, recording_path
from atende.providers.registry import ProviderRegistry
from atende.store import models
from atende.store.db import Store, utc
from atende.store.secrets import SecretBox
from atende.store.writes import insert_call, insert_turn, update_call
from atende.telephony.trunks import TrunkConfig, TrunkManager

log = logging.getLogger(__name__)


class CallEngine:
    """Decides what happens to each call and keeps its record: the channels' router (which
    assistant answers, whether there is room), the sessions' observer (turns, outcomes,
    events) and the placer of outbound attempts (for the queue and transfers). The live
    calls are in LiveCalls, what is written and told of them goes through CallRecords."""

    def __init__(self, store: Store, providers: ProviderRegistry, executor: Executor,
                 live: LiveCalls, records: CallRecords, trunks: TrunkManager,
                 dialer: Dialer, secrets: SecretBox,
                 recordings: Path | None = None,
                 callbacks: Callable[[Callback], Awaitable[dict[str, Any]]] | None = None,
                 max_call_seconds: float = 3600,
                 provider_keys: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.providers = providers
        self.executor = executor
        self.live = live
        self.records = records
        self.trunks = trunks
        self.dialer = dialer
        self.secrets = secrets  # decrypts assistants' provider keys
        self.recordings = recordings  # where calls are recorded (None: never)
        self.callbacks = callbacks  # queues the call backs assistants promise
        self.max_call_seconds = max_call_seconds
        self.provider_keys = dict(provider_keys or {})  # when an assistant names none
        # Each assistant row as calls see it, made once per row read: the directory hands
        # every call the same row until the assistant changes (or 5 s pass), and making
        # the profile (its keys decrypted) cost more than the rest of admission.
        self._profiles: WeakKeyDictionary[models.Assistant, AssistantProfile] = \
            WeakKeyDictionary()
        self._tasks = BackgroundTasks()
        self.transfers = Transfers(live, records, trunks, dialer, self.dial_through)

    def _profile(self, row: models.Assistant) -> AssistantProfile:
        profile = self._profiles.get(row)
        if profile is None:
            profile = self._profiles[row] = profile_of(row, self.secrets, self.provider_keys)
        return profile

    async def preload(self) -> None:
        """Load every assistant's voice and synthesise its greeting before calls arrive, so
        the greeting starts as soon as a call is answered."""
        for a in await self.store.assistants():
            await self.prepare_assistant(a)

    async def prepare_assistant(self, a: models.Assistant) -> None:
        """Load the assistant's voice (and the end-of-turn model, if it uses it) and
        synthesise its greeting (when it is the same on every call). ValueError: the voice
        is unknown."""
        loop = asyncio.get_running_loop()
        voice = await loop.run_in_executor(self.executor, self.providers.load_voice, a.voice)
        if (a.conversation or {}).get("end_of_turn_model"):
            await loop.run_in_executor(self.executor, self.providers.load_turn_model)
        text = render(a.greeting, {}) if a.greeting else RuleSet.from_dict(a.rules).greeting
        if text and "{" not in text:
            await loop.run_in_executor(self.executor, voice.prepare, text)

    # CallRouter -------------------------------------------------------------------------
    async def admit(self, info: CallInfo) -> Rejection | None:
        trunk = self.trunks.trunks.get(info.extra.get("trunk_id", ""))
        domain = info.extra.get("domain_uuid")  # FusionPBX's, as the channel says it
        directory = await self.store.directory()
        if trunk is not None:
            # A trunk's calls go to its assistant (or the default one).
            row = directory.by_id(trunk.config.assistant_id)
        elif named := info.extra.get("assistant_id"):  # the channel says whose call it is
            row = directory.by_id(named)
            if row is not None and row.domain_uuid not in (None, domain):
                log.warning("call %s from domain %s names secretary %s of domain %s: "
                            "refused", info.id, domain or "(none)", named, row.domain_uuid)
                row = None
        else:
            row = directory.for_call(info.to_user, domain)
        return await self._take(info, row, trunk.config if trunk else None, recorded=False)

    async def adopt(self, info: CallInfo, assistant_id: str) -> Rejection | None:
        """An assistant answers a call that another part of atende already records (a
        bridge call its callee did not take): the same record goes on, its assistant
        named from now."""
        row = (await self.store.directory()).by_id(assistant_id or None)
        return await self._take(info, row, None, recorded=True)

    async def _take(self, info: CallInfo, row: models.Assistant | None, trunk: TrunkConfig | None,
              recorded: bool) -> Rejection | None:
        """Admit ``info`` for ``row``'s assistant, if it exists and there is room, and
        record that (a new record, or the one the call has when ``recorded``)."""
        assistant = self._profile(row) if row is not None else None
        rejection: Rejection | None = None
        cause: str | None = None
        if assistant is None:
            rejection, cause = Rejection.NOT_FOUND, "no_such_assistant"
            log.info("call %s to %r: no such assistant", info.id, info.to_user)
        elif problem := await self.live.take(LiveCall(assistant, info), trunk):
            rejection, cause = Rejection.BUSY, problem[0]
            log.warning("call %s refused: %s", info.id, problem[1])
        now = self.records.wall()
        state = {"assistant_id": assistant.id if assistant else None,
                 "status": "rejected" if rejection else "ringing", "hangup_cause": cause,
                 "end_at": now if rejection else None, "node_id": self.store.node_id}
        if recorded:
            self.store.submit(update_call(info.id, **state))
        else:
            self.store.submit(insert_call(
                id=info.id, channel=info.channel, direction=info.direction,
                from_uri=info.from_uri, to_uri=info.to_uri, from_user=info.from_user,
                from_display=info.from_display, to_user=info.to_user,
                remote_address=info.remote_address, external_id=info.external_id,
                trunk_id=trunk.id if trunk else None, invite_at=now, **state))
        if rejection is not None or assistant is None:
            self.records.events.publish(info.id, "call.finished", finished_data(
                {"status": "rejected", "hangup_cause": cause, "direction": info.direction}))
            return rejection
        self.records.events.publish(info.id, "call.ringing", {
            "direction": info.direction, "from": info.from_uri, "to": info.to_uri,
            "trunk_id": trunk.id if trunk else None, "assistant_id": assistant.id})
        return None

    async def answering(self, info: CallInfo, caller: Ringing) -> Refused | None:
        return None  # an assistant takes every call it admitted, at once: no ringing

    def connected(self, leg: CallLeg) -> None:
        active = self.live.get(leg.info.id)
        if active is None:
            return
        self.store.submit(update_call(leg.info.id, status="in_progress",
                                      answer_at=self.records.wall()))
        self.records.events.publish(leg.info.id, "call.answered",
                                    {"direction": leg.info.direction})
        a = active.assistant
        job = active.job
        context = job.context() if job is not None and job.task else None
        session = session_for(a, leg, active.rules or rules_for(a, job), context,
                              self.providers, self.executor, self, self.records.wall())
        active.session = session
        active.leg = leg
        loop = asyncio.get_running_loop()
        if a.record and self.recordings is not None:
            self._record(leg, loop.time())
        active.task = loop.create_task(self._run(active, leg))
        limit = min(self.max_call_seconds, a.turns.max_call_seconds or self.max_call_seconds)
        active.limit = loop.call_later(limit, self._too_long, leg)

    def _record(self, leg: CallLeg, start: float) -> None:
        assert self.recordings is not None
        try:
            leg.recorder = WavRecorder(recording_path(self.recordings, leg.info.id), start)
        except OSError as exc:  # the call goes on without it
            log.error("call %s: cannot record (%s)", leg.info.id, exc)
            return
        self.store.submit(update_call(leg.info.id, recorded=True))

    def _too_long(self, leg: CallLeg) -> None:
        if not leg.ended:
            log.info("call %s reached ATENDE_MAX_CALL_SECONDS; hanging up", leg.info.id)
            self._tasks.spawn(leg.hangup("max_duration"))

    # Transfers (calls/transfers.py) ------------------------------------------------
    def decide_transfer(self, info: CallInfo, target: str) -> str | None:
        refusal = self.transfers.refusal(info, target)
        if refusal is not None:
            self.records.event(info.id, "transfer_refused", {"to": target, "reason": refusal})
        return refusal

    async def take_transfer(self, leg: CallLeg, target: str,
                            headers: tuple[tuple[str, str], ...]) -> tuple[int | None, str]:
        return await self.transfers.take(leg, target, headers)

    async def transfer_call(self, leg: CallLeg, to: str, bridge: bool = False
                            ) -> TransferResult:
        return await self.transfers.by_assistant(leg, to, bridge)

    # Outbound --------------------------------------------------------------------------
    async def dial_through(self, trunk: TrunkConfig, user: str, assistant: AssistantProfile,
                           ring_timeout: float, headers: tuple[tuple[str, str], ...] = (),
                           on_outcome: Callable[[DialOutcome], None] | None = None
                           ) -> models.Call:
        """Call ``user`` (already formatted by ``trunk.dial_user``) through ``trunk`` now,
        with ``assistant`` talking: one attempt, no queue (transfers taken for a peer).
        DialError: the call cannot be placed (the trunk's address does not resolve, or the
        trunk has no channel free)."""
        info = outbound_info(uuid.uuid4().hex, trunk, user)
        prepared = await self.dialer.prepare(DialRequest(info, user, trunk.id, ring_timeout,
                                                         headers))
        info.to_uri = prepared.address
        active = LiveCall(assistant, info, rules=rules_for(assistant, None), attempt=1)
        if problem := await self.live.take(active, trunk):
            raise DialError(problem[1])
        row = models.Call(
            id=info.id, channel=info.channel, direction="outbound", from_uri=info.from_uri,
            to_uri=info.to_uri, from_user=info.from_user, to_user=info.to_user,
            trunk_id=trunk.id, assistant_id=assistant.id, status="dialing",
            invite_at=self.records.wall(), attempts=1, node_id=self.store.node_id)
        try:
            await self.store.run(lambda s: s.add(row))
        except BaseException:
            self.live.release(info.id)
            raise
        self.records.events.publish(info.id, "call.dialing", {"attempt": 1, "to": info.to_uri})
        self._tasks.spawn(self._dial(active, prepared, on_outcome))
        return row

    # Queued calls (calls/queue.py claims them) ------------------------------------------
    async def reserve(self, call: models.Call, assistant: models.Assistant,
                      trunk: TrunkConfig, user: str) -> bool:
        """Take a place for a queued call's next attempt, if atende and the trunk have
        one: the queue then claims the call in the store and calls ``attempt``."""
        if call.id in self.live or self.live.capacity_problem(trunk) is not None:
            return False
        job = CallJob.of(call)
        profile = self._profile(assistant)
        return await self.live.take(LiveCall(profile, outbound_info(call.id, trunk, user),
                                             job=job, rules=rules_for(profile, job)),
                                    trunk) is None

    def release(self, call_id: str) -> None:
        """Give back a place taken by ``reserve`` that was not used."""
        self.live.release(call_id)

    async def attempt(self, call_id: str, trunk: TrunkConfig, attempt: int) -> None:
        """Dial the attempt number ``attempt`` of a reserved and claimed call."""
        active = self.live.get(call_id)
        assert active is not None  # reserved
        active.attempt = attempt
        info = active.info
        job = active.job
        assert job is not None
        if active.cancel.is_set():  # cancelled between the reservation and now
            self.live.release(call_id)
            self._attempt_over(active, "cancelled", None, "cancelled")
            return
        try:
            prepared = await self.dialer.prepare(DialRequest(
                info, info.to_user or "", trunk.id, job.ring_timeout_s))
        except DialError as exc:
            self.live.release(call_id)
            self._attempt_over(active, "failed", None, str(exc))
            return
        info.to_uri = prepared.address
        self.store.submit(update_call(call_id, to_uri=info.to_uri, from_uri=info.from_uri,
                                      from_user=info.from_user, to_user=info.to_user))
        self.records.events.publish(call_id, "call.dialing",
                                    {"attempt": attempt, "to": info.to_uri})
        if job.task and active.rules is not None:
            # The greeting names the callee and the task: synthesise it while it rings.
            text = greeting(active.assistant, active.rules, job.context())
            self._tasks.spawn(self._prepare(active.assistant, text))
        self._tasks.spawn(self._dial(active, prepared, None))

    async def _prepare(self, assistant: AssistantProfile, text: str) -> None:
        voice = self.providers.voice(assistant.voice)
        await asyncio.get_running_loop().run_in_executor(self.executor, voice.prepare, text)

    async def _dial(self, active: LiveCall, prepared: PreparedDial,
                    on_outcome: Callable[[DialOutcome], None] | None) -> None:
        outcome = await self.dialer.dial(prepared, active.cancel)
        if on_outcome is not None:
            on_outcome(outcome)
        info = active.info
        if outcome.leg is None:
            self.live.release(info.id)
            log.info("call %s to %s: %s (%s)", info.id, info.to_uri, outcome.status,
                     outcome.reason)
            self._attempt_over(active, outcome.status, outcome.sip_status, outcome.reason)
            return
        found = {"external_id": outcome.leg.info.external_id} \
            if outcome.leg.info.external_id else {}  # the channel's id for it (FreeSWITCH's)
        self.store.submit(update_call(info.id, sip_status=outcome.sip_status, **found))
        self.store.submit(end_attempt(info.id, active.attempt, None, "answered",
                                      outcome.sip_status, None))
        self.connected(outcome.leg)

    def _attempt_over(self, active: LiveCall, status: str, sip_status: int | None,
                      reason: str) -> None:
        """An attempt ended unanswered: try again later if its policy says so, else the
        call is over."""
        now = self.records.wall()
        call_id = active.info.id
        job = active.job
        retry_at = None
        if job is not None and not active.cancel.is_set():
            retry_at = next_attempt_at(job.retry, active.attempt, status, sip_status, now)
        if retry_at is not None:
            log.info("call %s: attempt %d %s; next attempt at %s", call_id, active.attempt,
                     status, retry_at.isoformat(timespec="seconds"))
            self.store.submit(requeue(call_id, active.attempt, now, retry_at, status,
                                      sip_status, reason))
            self.records.events.publish(call_id, "call.retry_scheduled", retry_data(
                active.attempt, status, sip_status, reason, retry_at))
            return
        result = dial_outcome(status)
        self.store.submit(end_attempt(call_id, active.attempt, now, status, sip_status,
                                      reason))
        self.records.finish(call_id, status=status, sip_status=sip_status,
                     hangup_cause=reason[:64], outcome=result,
                     summary=summarize(result, {}, job.caller_name if job else None,
                                       reason, active.attempt))

    def ended_before_answer(self, info: CallInfo, cause: str) -> None:
        self.live.release(info.id)
        status = "cancelled" if cause == "cancelled" else "failed"
        self.store.submit(update_call(info.id, status=status, hangup_cause=cause,
                                      end_at=self.records.wall()))
        self.records.events.publish(info.id, "call.finished", finished_data(
            {"status": status, "hangup_cause": cause}))

    async def _run(self, active: LiveCall, leg: CallLeg) -> None:
        assert active.session is not None
        try:
            await active.session.run()
            await self.transfers.joined(leg)  # transferred by joining it to another call
        except Exception:
            log.exception("agent session of call %s failed", leg.info.id)
            if not leg.ended:
                await leg.hangup("agent_error")
        finally:
            if active.limit is not None:
                active.limit.cancel()
            if leg.recorder is not None:
                leg.recorder.close()
            self.live.release(leg.info.id)
            cause = leg.end_cause or "agent_error"
            values: dict[str, object] = {}
            if active.job is not None or active.outcome is not None:
                # Calls placed with a job, or where the conversation settled something.
                result = active.outcome or ("cancelled" if active.cancel.is_set() else
                                            "completed")
                who = active.job.caller_name if active.job else None
                values = {"outcome": result, "fields": active.fields,
                          "summary": summarize(result, active.fields, who, cause)}
            if active.job is not None:
                self.store.submit(end_attempt(leg.info.id, active.attempt, self.records.wall(),
                                              None, None, cause))
            self.records.finish(leg.info.id, status="completed", hangup_cause=cause,
                                delivers=active.job is not None, **values)
            log.info("call %s ended: %s %s", leg.info.id, cause, values.get("outcome", ""))

    # SessionObserver --------------------------------------------------------------------
    def on_turn(self, call_id: str, turn: Turn) -> None:
        self.records.events.publish(call_id, "call.turn", {
            "speaker": turn.speaker, "text": turn.text, "intent": turn.intent,
            "interrupted": turn.interrupted, "latency_ms": turn.latency_ms}, turn.ended_at)
        self.store.submit(insert_turn(
            call_id, speaker=turn.speaker, text=turn.text, intent=turn.intent,
            started_at=utc(turn.started_at), ended_at=utc(turn.ended_at),
            interrupted=turn.interrupted, latency_ms=turn.latency_ms, stt_ms=turn.stt_ms,
            llm_ms=turn.llm_ms, tts_ms=turn.tts_ms, played_ms=turn.played_ms,
        ))

    def on_dtmf(self, call_id: str, digit: str, at: float) -> None:
        self.records.event(call_id, "dtmf", {"digit": digit}, at)

    def on_outcome(self, call_id: str, outcome: str, fields: dict[str, str]) -> None:
        active = self.live.get(call_id)
        if active is not None:
            active.outcome = outcome
            active.fields = {**active.fields, **fields}
        log.info("call %s: outcome %s %s", call_id, outcome, fields or "")
        self.records.event(call_id, "outcome", {"outcome": outcome, "fields": fields})

    def on_hold(self, call_id: str, on_hold: bool, at: float) -> None:
        self.records.event(call_id, "hold" if on_hold else "resume", {}, at)

    def on_event(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        self.records.event(call_id, kind, data)

    async def schedule_callback(self, call_id: str, at: datetime, number: str | None,
                                reason: str) -> dict[str, Any]:
        active = self.live.get(call_id)
        if active is None or self.callbacks is None:
            return {"error": "call backs cannot be scheduled on this call"}
        info, job = active.info, active.job
        # Who to call back: the person on this call (the number dialled, or the caller's).
        to = number or (job.phone_number if job is not None else info.from_user)
        if not to:
            return {"error": "this call's number is unknown: ask for it and give number"}
        result = await self.callbacks(Callback(
            of_call=call_id, at=at, number=to, reason=reason, assistant_id=active.assistant.id,
            trunk_id=info.extra.get("trunk_id") or self._way_back(info.channel),
            caller_name=job.caller_name if job is not None else info.from_display,
            webhook_url=job.webhook_url if job is not None else None,
            metadata=dict(job.metadata) if job is not None else {}))
        kind = "callback_refused" if "error" in result else "callback_scheduled"
        self.records.event(call_id, kind, {"number": to, "reason": reason, **result})
        return result

    def _way_back(self, channel: str) -> str | None:
        """The trunk to call back on a call that came without one: a call FreeSWITCH sent
        goes back through the FreeSWITCH trunk, when there is exactly one (else the
        starter's own choice: the only trunk, or an error the model is told)."""
        ours = [t.config.id for t in self.trunks.trunks.values()
                if t.config.enabled and t.config.channel == channel]
        return ours[0] if len(ours) == 1 and channel != "sip" else None

    async def close(self, deadline: float) -> None:
        """Let the sessions finish their records, until ``deadline`` (event-loop time)."""
        await all_before([a.task for a in self.live if a.task is not None], deadline)
