"""Placement (admin): where a server would go and why, without creating it.

The RequestSpec is built as CreateServer builds it (the same validation and checks, no record
written, nothing claimed) and the scheduler's ExplainPlacement answers.
"""

from __future__ import annotations

from services.api.flows.request_spec import SpecResolver, request_spec, resources_of
from services.api.peers import Peers, call
from services.api.servers.manager import validate_server
from services.api.validation import ID_CHARS, Violations
from services.core import context
from services.core.ids import new_id
from stratus.scheduler.v1 import scheduler_pb2
from stratus.v1 import placement_pb2, servers_pb2

EXPLAIN_TIMEOUT_S = 30.0


def validate_explain(req: placement_pb2.ExplainPlacementRequest) -> None:
    v = Violations()
    if not req.HasField("server"):
        v.add("server", "is required")
    validate_server(v, req.server, require_name=False)
    v.pattern("project_id", req.project_id, ID_CHARS, "letters, digits, '.', '_' or '-' (at most 128)")
    v.raise_if_any()


class PlacementManager:
    def __init__(self, specs: SpecResolver, peers: Peers) -> None:
        self._specs = specs
        self._peers = peers

    async def explain(self, req: placement_pb2.ExplainPlacementRequest) -> placement_pb2.PlacementExplanation:
        validate_explain(req)
        project_id = req.project_id or context.current().project_id
        resolved = await self._specs.resolve(req.server, project_id)
        src = req.server
        server = servers_pb2.Server(
            id=f"explain-{new_id()}", name=src.name, project_id=project_id, flavor_id=resolved.flavor.id,
            image_id=resolved.image.id, availability_zone=src.availability_zone,
            server_group_id=src.server_group_id, scheduler_hints=src.scheduler_hints,
            resources=resources_of(resolved.flavor),
        )  # fmt: skip
        spec = request_spec(server, resolved.flavor, resolved.image)
        return await call(self._peers.scheduler().ExplainPlacement,
                          scheduler_pb2.ExplainPlacementRequest(spec=spec), EXPLAIN_TIMEOUT_S)  # fmt: skip
