"""gRPC message limits, set on every server and channel from here instead of gRPC's defaults.

A process accepts messages up to ``RECEIVE_BYTES``: well above the largest request the API
accepts (a CreateServer of at most ``CREATE_SERVER_MAX_BYTES``, an image chunk of at most
``IMAGE_CHUNK_MAX_BYTES``), so an oversized request reaches validation and is answered
INVALID_ARGUMENT naming its field; only a message larger than that is refused by the transport
(RESOURCE_EXHAUSTED). Answers are bounded
where they are made (a list page stops at ``PAGE_BYTES``), and a process sends at most
``SEND_BYTES``.
"""

from __future__ import annotations

from typing import Any

RECEIVE_BYTES = 8 << 20
SEND_BYTES = 8 << 20
# The largest CreateServer the API accepts, encoded (user_data, metadata and hints together).
CREATE_SERVER_MAX_BYTES = 256 << 10
# The largest chunk of an image upload (clients send 1 MiB).
IMAGE_CHUNK_MAX_BYTES = 4 << 20
# A list answer stops adding items once it holds this much (always at least one).
PAGE_BYTES = 1 << 20


def options() -> list[tuple[str, Any]]:
    """The limits as gRPC channel and server options."""
    return [("grpc.max_receive_message_length", RECEIVE_BYTES), ("grpc.max_send_message_length", SEND_BYTES)]
