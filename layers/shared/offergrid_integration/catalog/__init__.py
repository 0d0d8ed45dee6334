"""The offer sync: the provider's catalog made Offergrid's offers (docs/architecture.md's module map). Run
by functions/offer_sync/app.py beside the order jobs; imports nothing of `orders`.
"""
