"""What an Offergrid answer means: the tolerant reader (docs/decisions.md#5, #10) and the typed error of a
refused request. Messages name fields, never their values.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import httpx
from pydantic import ValidationError

from offergrid_integration.offergrid.errors import (
    APIStatusError,
    UnreadableResponseError,
    error_class_for_status,
)
from offergrid_integration.offergrid.models import ErrorBody, OffergridResponse

RESOURCE_KEYS: Final = ("data", "item", "orderItem", "order", "offer")
_MAX_ERROR_TEXT: Final = 2_000
_MAX_ID_SHOWN: Final = 128

_log = logging.getLogger("offergrid_integration.offergrid.client")  # one logger for the client's words


def json_body(response: httpx.Response, path: str) -> Any:
    """The JSON of a 2xx read; `UnreadableResponseError` when it has none (empty, or not JSON)."""
    body = _json(response)
    if body is _NO_BODY:
        raise UnreadableResponseError(
            f"answered {response.status_code} without a JSON body",
            status_code=response.status_code,
            method="GET",
            path=path,
        )
    return body


def read_resource[M: OffergridResponse](model: type[M], response: httpx.Response, body: Any, path: str) -> M:
    """The resource a 2xx read answered; `UnreadableResponseError` when it holds no readable one."""
    try:
        return model.model_validate(_unwrap(body))
    except ValidationError as exc:
        raise UnreadableResponseError(
            f"answered {response.status_code} without a readable {model.__name__}: {_problems(exc)}",
            status_code=response.status_code,
            method="GET",
            path=path,
        ) from None


def written_resource[M: OffergridResponse](
    model: type[M], response: httpx.Response, method: str, path: str, *, expected_id: str | None = None
) -> M | None:
    """The resource a 2xx write answered, if it holds a readable one (of `expected_id`), else None."""
    body = _json(response)
    if body is _NO_BODY:
        return None
    try:
        resource = model.model_validate(_unwrap(body))
    except ValidationError:
        status = response.status_code
        _log.debug(
            "offergrid %s %s answered %d without a readable %s",
            *(method, path, status, model.__name__),
            extra={"method": method, "path": path, "status": status},
        )
        return None
    if expected_id is not None and getattr(resource, "id", None) != expected_id:
        return None
    return resource


def listed_element[M: OffergridResponse](model: type[M], raw: Any, path: str, position: int) -> M | None:
    """One listed element, or None when it cannot be read (logged with its position and id)."""
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        ident = raw.get("id") if isinstance(raw, dict) else None
        shown = ident if isinstance(ident, str | int) and not isinstance(ident, bool) else None
        problems = _problems(exc)
        element = None if shown is None else str(shown)[:_MAX_ID_SHOWN]
        _log.warning(
            "offergrid list element %d of GET %s skipped: unreadable %s (%s)",
            *(position, path, model.__name__, problems),
            extra={"path": path, "position": position, "model": model.__name__, "elementId": element}
            | {"problems": problems},
        )
        return None
    if parsed.unreadable_fields:
        fields = list(parsed.unreadable_fields)
        _log.info(
            "offergrid list element %d of GET %s: unreadable optional fields left out: %s",
            *(position, path, ", ".join(fields)),
            extra={"path": path, "position": position, "unreadableFields": fields},
        )
    return parsed


def status_error(response: httpx.Response, method: str, path: str) -> APIStatusError:
    """The error of a non-2xx answer, of the class its status calls for, with the body's message."""
    status = response.status_code
    body: Any
    message: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = response.text[:_MAX_ERROR_TEXT] or None
    if isinstance(body, dict):
        try:
            message = ErrorBody.model_validate(body).text()
        except ValidationError:
            message = None
    return error_class_for_status(status)(
        message or response.reason_phrase or f"HTTP {status}",
        status_code=status,
        body=body,
        request_id=response.headers.get("x-request-id"),
        method=method,
        path=path,
    )


class _NoBody:
    """The body of a 2xx answer that has none, or none that is JSON."""


_NO_BODY: Final = _NoBody()


def _json(response: httpx.Response) -> Any:
    if not response.content.strip():
        return _NO_BODY
    try:
        return response.json()
    except ValueError:
        return _NO_BODY


def _unwrap(body: Any) -> Any:
    """A resource given as is, or wrapped once (`{"data": {...}}`) when the top level has no `id`."""
    if isinstance(body, dict) and "id" not in body:
        for key in RESOURCE_KEYS:
            inner = body.get(key)
            if isinstance(inner, dict):
                return inner
    return body


def _problems(exc: ValidationError) -> str:
    """Where and what went wrong, never the values (the pydantic message quotes the input)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}" for err in exc.errors()
    )
