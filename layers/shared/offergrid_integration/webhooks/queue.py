"""The orders queue as a port: the ingress and the pending-order sweep send, an adapter stores.

No boto3 here (domain modules never import it); `sqs_queue.SqsQueue` is the adapter.
"""

from __future__ import annotations

from typing import Protocol

from offergrid_integration.webhooks.events import QueuedMessage


class QueueSendError(Exception):
    """The queue did not accept the message: nothing was stored, the sender must retry.

    Carries the service's error code (e.g. `AWS.SimpleQueueService.NonExistentQueue`), never the
    message body.
    """

    def __init__(self, code: str) -> None:
        super().__init__(f"queue rejected the message: {code}")
        self.code = code


class QueuePort(Protocol):
    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
        """Store one message (String attributes); return its id if the queue gives one.

        Raise `QueueSendError` when the message was not stored.
        """
        ...


def send_queued_message(queue: QueuePort, message: QueuedMessage) -> str | None:
    """Send `message` as the orders queue expects it: JSON body plus its String attributes."""
    return queue.send(message.to_json(), message.message_attributes())
