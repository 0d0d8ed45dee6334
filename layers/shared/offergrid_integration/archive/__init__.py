"""The archive of verified deliveries (issue 25; docs/architecture.md, "The delivery archive")."""
