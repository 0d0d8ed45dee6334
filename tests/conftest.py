"""Shared fixtures. Plugins live in tests/fixtures/ so each area owns its own."""

pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.offergrid_fake",
]
