"""Offergrid webhooks (issue 3): signature verification, the normalised event model, the ingress.

- `signature`  `sign`, `verify_signature`, `SignatureVerificationError` (typed `reason`)
- `events`     `OffergridEvent` (flat and nested payloads normalised), `EventType`
- `ingress`    `WebhookIngress.handle(api_gateway_event) -> IngressResult`

What the ingress queues (`QueuedMessage`, its dedup key, the queue port and its SQS adapter) is the
orders package's contract: `orders.queue`, `orders.sqs_queue`.

Importing the package imports nothing heavy; import the submodules you need.
"""
