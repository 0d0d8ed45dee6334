"""Offergrid webhooks (issue 3): signature verification, the normalised event model, dedup keys.

- `signature`  `sign`, `verify_signature`, `SignatureVerificationError` (typed `reason`)
- `events`     `OffergridEvent`, `QueuedMessage`, `dedup_key_for`, `queued_message_for_order_item`
- `queue`      `QueuePort` (+ `QueueSendError`); `sqs_queue.SqsQueue` is its boto3 adapter
- `ingress`    `WebhookIngress.handle(api_gateway_event) -> IngressResult`

Importing the package imports nothing heavy; import the submodules you need.
"""
