"""GET /v1/nodes: the atende nodes sharing this database (docs/scaling.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from atende.api import examples as ex
from atende.cluster.nodes import nodes_view
from atende.store.db import Store


class NodeOut(BaseModel):
    """An atende node that shares this database."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.NODE))

    id: str = Field(description="its ATENDE_NODE_ID")
    state: str = Field(description="alive (heard from within a lease), dead (not heard "
                       "from for a lease: another node will take it over), taken_over "
                       "(dead, its calls closed or requeued by another node), gone "
                       "(stopped cleanly)")
    started_at: datetime
    seen_at: datetime = Field(description="when it last said it was alive")
    taken_over_by: str | None = Field(description="the node that took it over")
    live_calls: int = Field(description="its calls live in the records")
    registers: list[str] = Field(description="the extension trunks it registers")


def nodes_router(store: Store, lease_s: float, wall: Callable[[], datetime]) -> APIRouter:
    router = APIRouter(tags=["system"])

    @router.get("/v1/nodes", response_model=list[NodeOut])
    async def nodes() -> list[NodeOut]:
        """Every node that has shared this database, by name: alive or not, its live
        calls, and the extension trunks it registers."""
        views = await store.run(nodes_view(wall(), lease_s))
        return [NodeOut(**v._asdict()) for v in views]

    return router
