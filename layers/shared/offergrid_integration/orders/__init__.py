"""The order domain: decide every order item once, handle cancellations, push fulfilment status
(the module map: docs/architecture.md). Its AWS and HTTP adapters live in `adapters/`."""
