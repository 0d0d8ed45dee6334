"""Offergrid webhooks (issue 3): signature verification, the normalised event model, the ingress.

- `signature`  `sign`, `verify_signature`, `SignatureVerificationError` (typed `reason`)
- `payload`    `normalise_payload` -> `WebhookEvent` (flat and nested payloads normalised, no pydantic),
               `EventType`, `PayloadReason`
- `events`     `OffergridEvent`, the pydantic model of the same fields (the processor, the sweep)
- `settings`   `WebhookIngressSettings`, checked without pydantic
- `ingress`    `WebhookIngress.handle(api_gateway_event) -> IngressResult`

What the ingress queues (`QueuedMessage`, its dedup key, the queue port and its SQS adapter) is the
orders package's contract: `orders.queue`, `orders.wire` (its wire format, which the ingress writes
without pydantic), `orders.sqs_queue`.

Importing the package imports nothing heavy; import the submodules you need.
"""
