"""The examples in /docs are true: each one is a valid instance of its model (request
examples pass the same validators a real request does)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from atende.api.assistant_fields import AssistantCreate, AssistantFields, AssistantOut
from atende.api.deliveries import DeliveryOut, RedeliverIn
from atende.api.hooks import HookCreate, HookOut
from atende.api.live import TransferIn, TransferOut
from atende.api.nodes import NodeOut
from atende.api.outbound import CallCreate, CallingHoursIn
from atende.api.providers import ProviderCreate, ProviderFields, ProviderOut
from atende.api.schemas import CallDetail, CallList, CallSummary
from atende.api.stats import Figures, StatsOut
from atende.api.trunk_fields import (
    TrunkCreate,
    TrunkOut,
    TrunkTestIn,
    TrunkTestOut,
    TrunkUpdate,
)

MODELS: list[type[BaseModel]] = [
    CallCreate, CallingHoursIn, CallSummary, CallDetail, CallList, AssistantOut, TrunkCreate,
    TrunkUpdate, TrunkOut, TrunkTestIn, TrunkTestOut, HookCreate, HookOut, TransferIn,
    TransferOut, DeliveryOut, RedeliverIn, Figures, StatsOut, AssistantCreate, AssistantFields,
    ProviderCreate, ProviderFields, ProviderOut, NodeOut]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_example_is_valid(model: type[BaseModel]) -> None:
    examples: list[dict[str, Any]] = model.model_json_schema().get("examples", [])
    assert examples, f"{model.__name__} has no example"
    for example in examples:
        parsed = model.model_validate(example)
        # Nothing in the example is silently dropped: it shows only real fields.
        assert set(example) <= set(parsed.model_dump(by_alias=True)), model.__name__
