"""Offergrid Provider API: client, models and errors."""
