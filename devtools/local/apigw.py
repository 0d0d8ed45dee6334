"""A local API Gateway (REST API, Lambda proxy integration) for every `Api` event of the template.

Requests become the proxy event API Gateway sends (`build_proxy_event`: `resource`, `path`,
`httpMethod`, `headers` with the last value of each header and `multiValueHeaders` with all of
them, query strings, `pathParameters`, `body` as text, or base64 with `isBase64Encoded: true` for
binary media types, `requestContext` with `requestId`, `stage`, `path`, `identity.sourceIp`, ...);
the function's proxy response is mapped back (`statusCode`, `headers`, `multiValueHeaders`, `body`,
`isBase64Encoded`). A function error or a malformed response is a 502
`{"message": "Internal server error"}`, a timeout a 504, as API Gateway answers.

Routes are served both as `/<stage>/<path>` (the deployed URL's shape) and `/<path>` (as
`sam local start-api` does). A request matching no route gets API Gateway's answer for that:
403 `{"message": "Missing Authentication Token"}` — a REST API does not answer 404 or 405.

Binary media types: the API's `BinaryMediaTypes` when the template sets them (SAM's `~1` escape
for `/` understood); otherwise every content type that is not text-like (`text/*`, JSON, XML,
form data, JavaScript) is treated as binary, and any body that is not UTF-8 is sent base64.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from devtools.local.http import LocalHttpServer
from devtools.local.runtime import InvokeResult
from devtools.local.template import ACCOUNT_ID, FunctionSpec, Template

__all__ = [
    "ApiRoute",
    "LocalApiGateway",
    "api_routes",
    "build_proxy_event",
    "is_binary",
    "proxy_response",
]

MAX_PAYLOAD_BYTES: Final = 10 * 1024 * 1024
_TEXT_TYPES: Final = (
    "text/*",
    "application/json",
    "application/*+json",
    "application/xml",
    "application/*+xml",
    "application/x-www-form-urlencoded",
    "application/javascript",
)
INTERNAL_ERROR: Final = (502, {"message": "Internal server error"})


@dataclass(frozen=True)
class ApiRoute:
    function_id: str
    path: str
    method: str  # upper case, or ANY
    stage: str
    api_id: str
    binary_media_types: tuple[str, ...] | None = None

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when `method path` hits this route, else None."""
        if self.method not in ("ANY", method):
            return None
        return _match_path(self.path, path)


def _match_path(template_path: str, path: str) -> dict[str, str] | None:
    pattern = ""
    for part in re.split(r"(\{[^}]+\})", template_path):
        if part.startswith("{") and part.endswith("+}"):
            pattern += f"(?P<{_group(part[1:-2])}>.+)"
        elif part.startswith("{"):
            pattern += f"(?P<{_group(part[1:-1])}>[^/]+)"
        else:
            pattern += re.escape(part)
    found = re.fullmatch(pattern.rstrip("/") or "/", path.rstrip("/") or "/")
    if found is None:
        return None
    names = re.findall(r"\{([^}+]+)\+?\}", template_path)
    return {name: unquote(found.group(_group(name))) for name in names}


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def api_routes(template: Template, functions: Iterable[FunctionSpec]) -> list[ApiRoute]:
    """Every `Api` event of the functions, with the stage and binary types of its REST API."""
    routes: list[ApiRoute] = []
    for spec in functions:
        raw_events = (template.resources[spec.logical_id].get("Properties") or {}).get("Events") or {}
        for event in spec.events_of_type("Api"):
            rest_api = (raw_events[event.name].get("Properties") or {}).get("RestApiId")
            # Without RestApiId, SAM creates the implicit API `ServerlessRestApi` (stage Prod).
            api_id = (
                str(rest_api["Ref"])
                if isinstance(rest_api, dict) and "Ref" in rest_api
                else "ServerlessRestApi"
            )
            api = template.resources.get(api_id, {}).get("Properties") or {}
            stage = str(template.resolve(api.get("StageName", "Prod"), _NoResources()))
            binary = api.get("BinaryMediaTypes")
            routes.append(
                ApiRoute(
                    function_id=spec.logical_id,
                    path=str(event.properties["Path"]),
                    method=str(event.properties["Method"]).upper(),
                    stage=stage,
                    api_id=api_id,
                    binary_media_types=(
                        tuple(str(t).replace("~1", "/") for t in binary) if binary is not None else None
                    ),
                )
            )
    return routes


class _NoResources:
    def ref(self, logical_id: str) -> Any:
        raise KeyError(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        raise KeyError(logical_id)


# ---------------------------------------------------------------------------------------------------
# Proxy event and response
# ---------------------------------------------------------------------------------------------------
def is_binary(content_type: str | None, binary_media_types: Sequence[str] | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if binary_media_types is not None:
        return bool(media_type) and any(fnmatch.fnmatch(media_type, t.lower()) for t in binary_media_types)
    if not media_type:
        return False
    return not any(fnmatch.fnmatch(media_type, pattern) for pattern in _TEXT_TYPES)


def build_proxy_event(
    *,
    route: ApiRoute,
    method: str,
    raw_path: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The event API Gateway's Lambda proxy integration (REST API, payload 1.0) sends."""
    split = urlsplit(raw_path)
    path = _strip_stage(unquote(split.path), route.stage)
    now = now or datetime.now(UTC)
    request_id = request_id or str(uuid.uuid4())
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query_pairs = parse_qsl(split.query, keep_blank_values=True)
    query_single = {name: value for name, value in query_pairs} or None
    query_multi: dict[str, list[str]] = {}
    for name, value in query_pairs:
        query_multi.setdefault(name, []).append(value)
    content_type = next((v for n, v in reversed(headers) if n.lower() == "content-type"), None)
    event_body: str | None
    if not body:
        event_body, encoded = None, False
    elif is_binary(content_type, route.binary_media_types):
        event_body, encoded = base64.b64encode(body).decode("ascii"), True
    else:
        try:
            event_body, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            event_body, encoded = base64.b64encode(body).decode("ascii"), True
    user_agent = next((v for n, v in headers if n.lower() == "user-agent"), None)
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": query_single,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": route.match(method, path) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route.path,
            "httpMethod": method,
            "extendedRequestId": request_id[:16],
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{route.stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": route.stage,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
            },
            "domainName": "localhost",
            "apiId": route.api_id,
        },
        "body": event_body,
        "isBase64Encoded": encoded,
    }


def _strip_stage(path: str, stage: str) -> str:
    prefix = f"/{stage}"
    if path == prefix or path.startswith(prefix + "/"):
        return path[len(prefix) :] or "/"
    return path


def proxy_response(outcome: InvokeResult) -> tuple[int, list[tuple[str, str]], bytes]:
    """Map a proxy integration's result to an HTTP response, as API Gateway does."""
    if not outcome.ok:
        if outcome.error and outcome.error.get("errorType") == "Sandbox.Timedout":
            return _json_reply(504, {"message": "Endpoint request timed out"})
        return _json_reply(*INTERNAL_ERROR)
    result = outcome.result
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        return _json_reply(*INTERNAL_ERROR)
    headers: list[tuple[str, str]] = []
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    single = result.get("headers") or {}
    headers.extend(
        (str(n), str(v)) for n, v in single.items() if n not in (result.get("multiValueHeaders") or {})
    )
    raw_body = result.get("body")
    if raw_body is None:
        body = b""
    elif not isinstance(raw_body, str):
        return _json_reply(*INTERNAL_ERROR)
    elif result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw_body, validate=True)
        except binascii.Error:
            return _json_reply(*INTERNAL_ERROR)
    else:
        body = raw_body.encode("utf-8")
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return int(result["statusCode"]), headers, body


def _json_reply(status: int, payload: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [("Content-Type", "application/json")]
    if status == 403:
        headers.append(("x-amzn-ErrorType", "MissingAuthenticationTokenException"))
    return status, headers, json.dumps(payload).encode("utf-8")


# ---------------------------------------------------------------------------------------------------
# The HTTP server
# ---------------------------------------------------------------------------------------------------
Invoker = Callable[[str, dict[str, Any], str], InvokeResult]


@dataclass
class LocalApiGateway(LocalHttpServer):
    """`invoke(function_id, event, request_id)` runs the function (a worker)."""

    name: ClassVar[str] = "local API"
    routes: list[ApiRoute]
    invoke: Invoker
    host: str = "127.0.0.1"
    port: int = 0
    requests_served: int = 0
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    def url_for(self, route: ApiRoute) -> str:
        return f"{self.base_url}/{route.stage}{route.path}"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(_ProxyHandler):
            api = gateway

        return Handler

    def handle(
        self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        path = unquote(urlsplit(raw_path).path)
        for route in self.routes:
            if route.match(method, _strip_stage(path, route.stage)) is not None:
                if len(body) > MAX_PAYLOAD_BYTES:
                    return _json_reply(413, {"message": "Request Too Long"})
                request_id = str(uuid.uuid4())
                event = build_proxy_event(
                    route=route,
                    method=method,
                    raw_path=raw_path,
                    headers=headers,
                    body=body,
                    source_ip=source_ip,
                    request_id=request_id,
                )
                self.requests_served += 1
                status, reply_headers, reply_body = proxy_response(
                    self.invoke(route.function_id, event, request_id)
                )
                return status, [*reply_headers, ("x-amzn-RequestId", request_id)], reply_body
        return _json_reply(403, {"message": "Missing Authentication Token"})


class _ProxyHandler(BaseHTTPRequestHandler):
    api: LocalApiGateway
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = [(name, value) for name, value in self.headers.items() if name.lower() != "connection"]
        started = time.monotonic()
        status, reply_headers, reply_body = self.api.handle(
            self.command, self.path, headers, body, self.client_address[0]
        )
        self.send_response(status)
        for name, value in reply_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply_body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply_body)
        self.log_message(
            '"%s %s" %s %.0fms', self.command, self.path, status, (time.monotonic() - started) * 1000
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the functions log what matters
