"""Offergrid webhooks (issue 3): signature verification, the normalised event model, the ingress.

- `signature`  `sign`, `verify_signature`, `SignatureVerificationError` (typed `reason`)
- `settings`   `WebhookIngressSettings`, checked without pydantic
- `ingress`    `WebhookIngress.handle(api_gateway_event) -> IngressResult`

What the ingress normalises and queues (`OffergridEvent`, `QueuedMessage`, its dedup key, the queue
port) is the orders queue's contract, `offergrid_integration.contract`; it never imports `orders`.

Importing the package imports nothing heavy; import the submodules you need.
"""
