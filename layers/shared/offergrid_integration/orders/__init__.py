"""The order domain: decide every order item once, handle cancellations, push fulfilment status.

Contract: `queue` (the orders-queue message, its dedup keys, the queue port; `sqs_queue` its
adapter), `messages` (the body parsed into one message discriminated on `kind`).
Use cases, one module each, dispatched by `registry`: `decide` (order.created), `cancel`
(order.cancelled), `status` (workorder.status_changed), `repairs` (the reconciliation's repairs);
`ports` (Ports, OrderOutcome, FailureReason, `OrderItemsApi`) and `steps` are what they share.
Running them: `pipeline` (one SQS record: parse, idempotency, classification, reporting) and
`runtime` (the processor's container state). Also `lifecycle` (the status rules),
`provider_events`, `sweep` (missed orders), `reconcile` (drift), and the ports a provider may swap
with their AWS adapters: `serviceability`, `records`, `workorders`.
"""
