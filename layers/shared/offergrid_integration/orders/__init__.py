"""The order domain: decide every order item once, handle cancellations, push fulfilment status.

The queue's contract is `offergrid_integration.contract` (never `webhooks`); `adapters.sqs_queue` is
its adapter, `messages` the body parsed into one message by `kind`.
Use cases, one module each, dispatched by `registry`: `decide` (order.created), `cancel`
(order.cancelled), `status` (workorder.status_changed), `repairs` (the reconciliation's repairs);
`ports` (Ports, OrderOutcome, FailureReason, `OrderItemsApi`) and `steps` are what they share.
Running them: `pipeline` (one SQS record: parse, idempotency, classification, reporting) and
`runtime` (the processor's container state). Also `lifecycle` (the status rules),
`provider_events`, `sweep` (missed orders), `reconcile` (drift), and the ports a provider may swap:
`serviceability`, `records`, `workorders`. Their AWS and HTTP adapters live in `adapters/`.
"""
