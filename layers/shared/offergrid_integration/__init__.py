"""Shared layer of the Offergrid provider integration.

Domain (`webhooks`, `orders`, `catalog`), the ports it needs and their adapters, plus the
Offergrid API client, the shared rate budget, secrets, configuration and observability.
"""
