"""Replies on their way to Instagram: in order per patient, retried, never blocking the dialogue.

The dialogue hands a reply over and moves on; each recipient's replies are then sent
one after another by a small task of their own, with the Graph client's retries. So
a slow or unavailable Graph API delays replies but neither reorders nor loses them,
and it never holds up other patients' conversations.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from clinic.audit import hash_id
from connectors.graph_api import GraphApiClient, PermanentSendError, SendError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    text: str | None = None
    quick_replies: list[tuple[str, str]] = field(default_factory=list)
    custom: dict | None = None  # a ready-made Graph `message` object
    action: str | None = None  # a sender action: "typing_on", "mark_seen"


class Outbox:
    """Per-recipient queues of replies, drained on the event loop that calls `put`."""

    def __init__(self, graph: GraphApiClient, id_hash_key: str):
        self._graph = graph
        self._id_hash_key = id_hash_key
        self._queues: dict[str, deque[Reply]] = {}

    def put(self, recipient_id: str, reply: Reply) -> None:
        queue = self._queues.get(recipient_id)
        if queue is not None:
            queue.append(reply)
            return
        self._queues[recipient_id] = deque([reply])
        asyncio.get_running_loop().create_task(self._drain(recipient_id))

    async def _drain(self, recipient_id: str) -> None:
        queue = self._queues[recipient_id]
        while queue:
            await self._deliver(recipient_id, queue[0])
            queue.popleft()
        del self._queues[recipient_id]

    async def _deliver(self, recipient_id: str, reply: Reply) -> None:
        send: Callable[[], Awaitable]
        if reply.action is not None:
            send = lambda: self._graph.send_sender_action(recipient_id, reply.action)  # noqa: E731
        elif reply.custom is not None:
            send = lambda: self._graph.send_custom(recipient_id, reply.custom)  # noqa: E731
        else:
            send = lambda: self._graph.send_text(  # noqa: E731
                recipient_id, reply.text or "", reply.quick_replies or None
            )
        try:
            await send()
        except PermanentSendError as error:
            logger.warning(
                "reply dropped: %s code=%s subcode=%s recipient=%s",
                type(error).__name__, error.code, error.subcode,
                hash_id(recipient_id, self._id_hash_key),
            )  # fmt: skip
        except (SendError, ValueError) as error:
            logger.error(
                "reply not delivered: %s recipient=%s",
                type(error).__name__, hash_id(recipient_id, self._id_hash_key),
            )  # fmt: skip

    def is_idle(self) -> bool:
        return not self._queues
