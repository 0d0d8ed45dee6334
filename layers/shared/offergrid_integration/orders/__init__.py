"""The order domain: decide every order item once, handle cancellations, push fulfilment status.

`processing` holds the three use cases; `lifecycle` the status rules; `provider_events` the
provider's status-change event; `serviceability`, `records` and `workorders` the ports (with their
default AWS adapters) a provider may swap.
"""
