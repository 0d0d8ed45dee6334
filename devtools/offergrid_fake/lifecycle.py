"""The documented order-item lifecycle, as the fake enforces it (our choice; the API docs state no rules).

Happy path: pending -> submitted_to_provider -> accepted -> scheduled -> in_progress -> completed
-> active, and skipping forward along it is allowed (pending -> accepted). Failure edges:
pending/submitted_to_provider -> rejected; accepted/scheduled/in_progress -> cancelled;
in_progress -> failed. rejected, cancelled and failed are terminal; so is active (nothing follows it).
A PATCH to the status the item already has is refused too: our integration promises never to send one.
"""

from __future__ import annotations

from typing import Final

HAPPY_PATH: Final = (
    "pending",
    "submitted_to_provider",
    "accepted",
    "scheduled",
    "in_progress",
    "completed",
    "active",
)
FAILURE_EDGES: Final[dict[str, frozenset[str]]] = {
    "pending": frozenset({"rejected"}),
    "submitted_to_provider": frozenset({"rejected"}),
    "accepted": frozenset({"cancelled"}),
    "scheduled": frozenset({"cancelled"}),
    "in_progress": frozenset({"cancelled", "failed"}),
}
TERMINAL: Final = frozenset({"rejected", "cancelled", "failed", "active"})


def allowed_targets(current: str) -> frozenset[str]:
    forward: frozenset[str] = frozenset()
    if current in HAPPY_PATH:
        forward = frozenset(HAPPY_PATH[HAPPY_PATH.index(current) + 1 :])
    return forward | FAILURE_EDGES.get(current, frozenset())


def transition_error(current: str, target: str) -> str | None:
    """None when `current -> target` is allowed, else the 422 message."""
    if target in allowed_targets(current):
        return None
    if current in TERMINAL:
        return f"Invalid status transition from '{current}' to '{target}': '{current}' is terminal"
    if current == target:
        return f"Invalid status transition: order item is already '{current}'"
    allowed = ", ".join(sorted(allowed_targets(current)))
    return f"Invalid status transition from '{current}' to '{target}' (allowed: {allowed})"
