"""What the fake answers: a status, a JSON body and headers, or a dropped connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


# NestJS names these by the older RFC phrases; Python 3.13's HTTPStatus uses RFC 9110's.
_NEST_PHRASES: Final = {413: "Payload Too Large", 422: "Unprocessable Entity"}


def phrase(status: int) -> str:
    if status in _NEST_PHRASES:
        return _NEST_PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(status: int, message: str | list[str]) -> dict[str, Any]:
    """Offergrid's (NestJS) error shape: `{"statusCode", "message", "error"}`."""
    return {"statusCode": status, "message": message, "error": phrase(status)}


def error_reply(status: int, message: str | list[str]) -> Reply:
    return Reply(status, error_body(status, message))
