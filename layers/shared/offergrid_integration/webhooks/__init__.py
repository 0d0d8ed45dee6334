"""Offergrid webhooks (issue 3): verify the signature, normalise via `contract`, queue.

Never imports `orders`; importing the package imports nothing heavy.
"""
