"""The overload control's state in /metrics, as the real collector writes it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from atende.api.metrics import LiveFigures, exposition
from atende.channels.sip.overload import SAMPLE_S, LoadMonitor
from tests.channels.test_admission import feed

NO_COUNTS: dict[str, list[tuple[object, ...]]] = {
    "finished": [], "status": [], "attempts": [], "deliveries": []}


def gauges(m: LoadMonitor) -> dict[str, float]:
    text = exposition(NO_COUNTS, LiveFigures(
        loop_lag_s=m.lag_s, shedding=m.shedding, admission_cap_per_s=m.cap_per_s)).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name in ("atende_event_loop_lag_seconds", "atende_overload_shedding",
                          "atende_admission_limit_per_second")}


def test_no_limit_then_shedding_then_a_limit_are_seen_as_they_happen() -> None:
    m = LoadMonitor(threshold_s=0.1)
    feed(m, 0.0, 1.0, 200, 0.0)  # 200 calls a second, on time
    assert gauges(m) == {"atende_event_loop_lag_seconds": 0.0,
                         "atende_overload_shedding": 0.0,
                         "atende_admission_limit_per_second": float("inf")}
    t = 1.0
    while not m.shedding:
        feed(m, t, SAMPLE_S, 200, 0.5)
        t += SAMPLE_S
    seen = gauges(m)
    assert seen["atende_overload_shedding"] == 1 and seen["atende_event_loop_lag_seconds"] > 0.1
    while m.shedding:
        feed(m, t, SAMPLE_S, 200, 0.0)
        t += SAMPLE_S
    seen = gauges(m)
    assert seen["atende_overload_shedding"] == 0
    assert 100 < seen["atende_admission_limit_per_second"] < 200  # under the 200 taken
