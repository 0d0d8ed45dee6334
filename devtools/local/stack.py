"""The whole stack on this machine: moto server, the Offergrid fake, the template's resources,
one warm worker per function, the local API Gateway and the SQS event sources.

    with LocalEnvironment(time_scale=60) as env:
        env.api_url("WebhookIngressFunction")    # POST webhooks here
        env.invoke("OfferSyncFunction", {...})    # a direct invocation
        env.drain()                              # run the queues' consumers until every queue is idle

Used by `python -m devtools.local up` (pollers in background threads, until Ctrl-C), by
`python -m devtools.local invoke --ephemeral`, by the demo and by the tests.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from devtools.local.apigw import ApiRoute, LocalApiGateway, api_routes
from devtools.local.lambda_api import LocalLambdaApi
from devtools.local.poller import DrainReport, SqsEventSource
from devtools.local.ports import DEFAULT_STACK_FILE, LOCAL_PORTS, PortInUse, is_address_in_use
from devtools.local.provision import LOCAL_SECRET_VALUES, LocalStack, MotoServer, provision
from devtools.local.runtime import REPO_ROOT, FunctionWorker, InvokeResult, lambda_runtime_environment
from devtools.local.seed import sample_order_items, seed_order_items
from devtools.local.template import FunctionSpec, Template, TemplateError, load_template
from devtools.offergrid_fake import OffergridFake

__all__ = [
    "DEFAULT_STACK_FILE",
    "DEFAULT_TEMPLATE",
    "LOCAL_API_KEY",
    "LOCAL_WEBHOOK_SECRET",
    "SAMPLE_CATALOG",
    "EnvVarsResult",
    "LocalEnvironment",
    "apply_env_vars",
    "function_environment",
]

DEFAULT_TEMPLATE: Final = REPO_ROOT / "template.yaml"
DEFAULT_LOG_DIR: Final = REPO_ROOT / ".local" / "logs"
LOCAL_API_KEY: Final = LOCAL_SECRET_VALUES["OFFERGRID_API_KEY_SECRET"]
LOCAL_WEBHOOK_SECRET: Final = LOCAL_SECRET_VALUES["OFFERGRID_WEBHOOK_SECRET"]
# The template parameter that points the functions at Offergrid; locally, at the fake.
OFFERGRID_URL_PARAMETER: Final = "OffergridApiUrl"
# Where the offer sync reads its catalog (`s3://${CatalogBucket}/${CatalogObjectKey}` in the template).
CATALOG_SOURCE_VARIABLE: Final = "CATALOG_SOURCE_URI"
SAMPLE_CATALOG: Final = REPO_ROOT / "samples" / "catalog.json"
# The stack file's `urls` key of the local Lambda Invoke API (`lambda_api.py`).
LAMBDA_URL: Final = "lambda"


_EXECUTE_API_URL: Final = re.compile(r"^https://[^/]+\.execute-api\.[^/]+/(?P<rest>.*)$")


@dataclass(frozen=True)
class EnvVarsResult:
    environment: dict[str, str]
    ignored: list[str]


def apply_env_vars(spec: FunctionSpec, env_vars: Mapping[str, Any] | None) -> EnvVarsResult:
    """Apply a `sam local invoke --env-vars` file the way SAM does.

    `{"Parameters": {...}}` applies to every function, `{"<LogicalId>": {...}}` to one (it wins).
    Like SAM, only variables the template declares for the function are overridden; the others
    are ignored (returned in `ignored`, so the caller can warn — SAM ignores them silently).
    """
    environment = dict(spec.environment)
    ignored: list[str] = []
    if not env_vars:
        return EnvVarsResult(environment, ignored)
    overrides: dict[str, Any] = {
        **(env_vars.get("Parameters") or {}),
        **(env_vars.get(spec.logical_id) or {}),
    }
    for name, value in overrides.items():
        if name in spec.environment:
            environment[name] = value if isinstance(value, str) else json.dumps(value)
        else:
            ignored.append(name)
    return EnvVarsResult(environment, sorted(ignored))


def function_environment(
    spec: FunctionSpec, stack: LocalStack, env_vars: Mapping[str, Any] | None = None
) -> tuple[dict[str, str], list[str]]:
    """The worker's full environment (runtime variables + the function's own) and the ignored names.

    Lambda and CodeDeploy calls go to the stack's local Lambda API (`lambda_api.py`), the others to moto.
    """
    applied = apply_env_vars(spec, env_vars)
    overridden = FunctionSpec(**{**spec.__dict__, "environment": applied.environment})
    return (
        lambda_runtime_environment(
            overridden,
            region=stack.region,
            endpoint_url=stack.endpoint_url,
            extra=local_service_endpoints(stack),
        ),
        applied.ignored,
    )


@contextlib.contextmanager
def _port_named(name: str, port: int) -> Iterator[None]:
    """A server that cannot bind its port: `PortInUse` naming the port and the flag that sets it."""
    try:
        yield
    except OSError as error:
        if port and is_address_in_use(error):
            raise PortInUse(port, LOCAL_PORTS[name]) from None
        raise


def local_service_endpoints(stack: LocalStack) -> dict[str, str]:
    """`AWS_ENDPOINT_URL_<SERVICE>` for what the local stack serves itself rather than moto."""
    url = stack.urls.get(LAMBDA_URL)
    return {f"AWS_ENDPOINT_URL_{service}": url for service in ("LAMBDA", "CODEDEPLOY")} if url else {}


@dataclass
class LocalEnvironment:
    template_path: Path = DEFAULT_TEMPLATE
    code_root: Path | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    time_scale: float = 60.0
    moto_port: int = 0
    api_port: int = 0
    fake_port: int = 0
    retry_delay: float = 0.0
    log_dir: Path | None = DEFAULT_LOG_DIR
    stack_file: Path | None = None
    env_vars: Mapping[str, Any] | None = None
    region: str = "eu-west-1"
    stack_name: str = "offergrid-local"
    with_api: bool = True
    # The Lambda Invoke API (and CodeDeploy's hook status) the pre-traffic hook and `make smoke` call.
    with_lambda_api: bool = True
    lambda_port: int = 0
    # Uploaded after provisioning where the functions read their catalog (`upload_catalog`).
    catalog: Path | None = None
    uploaded_catalogs: list[str] = field(default_factory=list)
    # Seed the fake with the order items events/ names (`make local`), so replayed webhooks end in
    # a decision instead of a 404 (`devtools/local/seed.py`).
    seed_orders: bool = False
    seeded_items: list[str] = field(default_factory=list)
    fake: OffergridFake | None = None
    moto: MotoServer | None = None
    template: Template | None = None
    stack: LocalStack | None = None
    specs: dict[str, FunctionSpec] = field(default_factory=dict)
    workers: dict[str, FunctionWorker] = field(default_factory=dict)
    sources: list[SqsEventSource] = field(default_factory=list)
    api: LocalApiGateway | None = None
    lambda_api: LocalLambdaApi | None = None
    ignored_env_vars: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # Written to the stack file: what a tool tells the user to type when it finds the stack stopped.
    start_command: str = "make local"
    _owns_fake: bool = field(default=True, init=False)
    _metrics: Any = field(default=None, init=False, repr=False)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, *, warm: bool = True) -> LocalEnvironment:
        started = time.monotonic()
        try:
            self.moto = MotoServer(port=self.moto_port).start()
            if self.fake is None:
                self.fake = OffergridFake(
                    api_keys=(LOCAL_API_KEY,), time_scale=self.time_scale, port=self.fake_port
                )
                with _port_named("offergrid", self.fake_port):
                    self.fake.start()
            else:
                self._owns_fake = False
                self.fake.start()
            base = load_template(self.template_path, root=self.code_root)
            parameters = dict(self.parameters)
            if OFFERGRID_URL_PARAMETER in (base.document.get("Parameters") or {}):
                parameters.setdefault(OFFERGRID_URL_PARAMETER, self.fake.base_url)
            self.template = base.with_parameters(parameters, region=self.region, stack_name=self.stack_name)
            self.stack = provision(self.template, self.moto.endpoint_url)
            self.timings["provision"] = time.monotonic() - started
            self._metrics = self.stack.client("cloudwatch")
            if self.with_lambda_api:
                self.lambda_api = LocalLambdaApi(
                    invoke=lambda fid, event: self.invoke(fid, event),
                    known=lambda: list(self.workers),
                    port=self.lambda_port,
                ).start()
                self.stack.urls[LAMBDA_URL] = self.lambda_api.base_url
            resolver = self.stack.resolver(self.template)
            for function_id in self.template.function_ids():
                spec = self.template.function(function_id, resolver)
                environment, ignored = function_environment(spec, self.stack, self.env_vars)
                if ignored:
                    self.ignored_env_vars[function_id] = ignored
                self.specs[function_id] = spec
                self.workers[function_id] = FunctionWorker(
                    spec,
                    environment,
                    log_path=(self.log_dir / f"{function_id}.log") if self.log_dir else None,
                    region=self.region,
                )
            if self.catalog is not None:
                self.uploaded_catalogs = self.upload_catalog(self.catalog)
            if self.seed_orders:
                self.seeded_items = seed_order_items(self.fake, sample_order_items())
            sqs = self.stack.client("sqs")
            for spec in self.specs.values():
                self.sources.extend(
                    SqsEventSource.for_function(
                        spec,
                        invoke=self._invoke_for_source,
                        client=sqs,
                        queue_url_for_arn=self.stack.queue_url_for_arn,
                        region=self.region,
                        retry_delay=self.retry_delay,
                    )
                )
            if self.with_api:
                self.api = LocalApiGateway(
                    api_routes(self.template, self.specs.values()),
                    invoke=lambda fid, event, rid: self.invoke(fid, event, request_id=rid),
                    port=self.api_port,
                )
                with _port_named("api", self.api_port):
                    self.api.start()
            self._record_urls()
            if warm:
                self.warm_up()
            if self.stack_file is not None:
                self.stack.save(self.stack_file)
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - started
        return self

    def warm_up(self) -> dict[str, str]:
        """Cold-start every worker whose code exists, in parallel. Returns {function: init error}."""
        started = time.monotonic()
        failures: dict[str, str] = {}

        def start(worker: FunctionWorker) -> None:
            try:
                worker.start()
            except RuntimeError as error:
                failures[worker.name] = str(error)

        runnable = [w for w in self.workers.values() if self.has_code(w.name)]
        with ThreadPoolExecutor(max_workers=max(1, len(runnable))) as pool:
            list(pool.map(start, runnable))
        for worker in self.workers.values():
            if worker.name not in failures and not self.has_code(worker.name):
                failures[worker.name] = f"no handler module in {worker.spec.code_uri}"
        self.timings["warm_up"] = time.monotonic() - started
        return failures

    def has_code(self, function_id: str) -> bool:
        spec = self.specs[function_id]
        module = spec.handler.rpartition(".")[0].replace(".", "/")
        return (spec.code_uri / f"{module}.py").exists() or (spec.code_uri / module / "__init__.py").exists()

    def stop(self) -> None:
        for source in self.sources:
            source.stop()
        if self.api is not None:
            self.api.stop()
        if self.lambda_api is not None:
            self.lambda_api.stop()
        for worker in self.workers.values():
            worker.stop()
        if self.fake is not None and self._owns_fake:
            self.fake.stop()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def __enter__(self) -> LocalEnvironment:
        return self if self.moto is not None else self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- use ----------------------------------------------------------------------------------------
    def _record_urls(self) -> None:
        assert self.stack is not None
        assert self.moto is not None
        assert self.fake is not None
        self.stack.urls = {"aws": self.moto.endpoint_url, "offergrid": self.fake.base_url}
        self.stack.start_command = self.start_command
        self.stack.log_dir = str(self.log_dir) if self.log_dir is not None else None
        if self.lambda_api is not None:
            self.stack.urls[LAMBDA_URL] = self.lambda_api.base_url
        if self.api is not None:
            self.stack.urls["api"] = self.api.base_url
            for route in self.api.routes:
                self.stack.urls[f"{route.function_id}:{route.method} {route.path}"] = self.api.url_for(route)
        self.stack.outputs = self.local_outputs()

    def local_outputs(self) -> dict[str, str]:
        """The template's Outputs resolved against the local stack (API URLs pointing at the local API)."""
        assert self.template is not None
        assert self.stack is not None
        resolver = self.stack.resolver(self.template)
        outputs: dict[str, str] = {}
        for name, output in self.template.outputs.items():
            condition = output.get("Condition")
            if condition is not None and not self.template.condition(str(condition)):
                continue
            try:
                value = str(self.template.resolve(output.get("Value"), resolver))
            except (TemplateError, KeyError):
                continue
            found = _EXECUTE_API_URL.match(value)
            if found is not None:
                if self.api is None:
                    continue
                value = f"{self.api.base_url}/{found.group('rest')}"
            outputs[name] = value
        return outputs

    def catalog_locations(self, function_id: str | None = None) -> list[str]:
        """The `s3://` catalog URIs the functions (or `function_id`) read, from their environment."""
        specs = [self.specs[function_id]] if function_id is not None else list(self.specs.values())
        locations: list[str] = []
        for spec in specs:
            source = spec.environment.get(CATALOG_SOURCE_VARIABLE, "")
            if urlsplit(source).scheme == "s3" and source not in locations:
                locations.append(source)
        return locations

    def upload_catalog(self, path: Path = SAMPLE_CATALOG, *, function_id: str | None = None) -> list[str]:
        """Put the catalog file `path` where the functions' `CATALOG_SOURCE_URI` (an s3:// URI) points.

        That is the template's catalog bucket at the `CatalogObjectKey` parameter's key, as the sync
        reads it. Returns the URIs written (none when no function reads an s3:// catalog).
        """
        assert self.stack is not None
        body = path.read_bytes()
        locations = self.catalog_locations(function_id)
        s3 = self.stack.client("s3")
        for location in locations:
            parts = urlsplit(location)
            s3.put_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"), Body=body)
        return locations

    def routes(self, function_id: str | None = None) -> list[ApiRoute]:
        if self.api is None:
            return []
        return [r for r in self.api.routes if function_id is None or r.function_id == function_id]

    def api_url(self, function_id: str) -> str:
        routes = self.routes(function_id)
        if not routes or self.api is None:
            raise TemplateError(f"{function_id} has no Api event")
        return self.api.url_for(routes[0])

    def invoke(self, function_id: str, event: Any, *, request_id: str | None = None) -> InvokeResult:
        try:
            worker = self.workers[function_id]
        except KeyError:
            known = ", ".join(self.workers) or "none"
            raise TemplateError(
                f"{function_id} is not a function of the template (functions: {known})"
            ) from None
        outcome = worker.invoke(event, request_id=request_id)
        self._record_lambda_metrics(function_id, outcome)
        return outcome

    def _record_lambda_metrics(self, function_id: str, outcome: InvokeResult) -> None:
        """What Lambda records of every invocation (AWS/Lambda `Invocations`, `Errors`), in moto's
        CloudWatch: a tool reads a local function's errors with the call it makes in AWS (`make smoke`)."""
        if self._metrics is None:
            return
        dimensions = [{"Name": "FunctionName", "Value": function_id}]
        with contextlib.suppress(Exception):  # a record, never a reason for the invocation to fail
            self._metrics.put_metric_data(
                Namespace="AWS/Lambda",
                MetricData=[
                    {"MetricName": "Invocations", "Dimensions": dimensions, "Value": 1.0, "Unit": "Count"},
                    {
                        "MetricName": "Errors",
                        "Dimensions": dimensions,
                        "Value": 0.0 if outcome.ok else 1.0,
                        "Unit": "Count",
                    },
                ],
            )

    def _invoke_for_source(self, function_id: str, event: dict[str, Any]) -> InvokeResult:
        return self.invoke(function_id, event)

    def sources_for(self, function_id: str) -> list[SqsEventSource]:
        return [source for source in self.sources if source.function_id == function_id]

    def drain(self, timeout: float = 60.0) -> dict[str, DrainReport]:
        """Run every SQS event source until all their queues are idle (one may feed another)."""
        deadline = time.monotonic() + timeout
        reports: dict[str, DrainReport] = {}
        while True:
            busy = False
            for source in self.sources:
                if not source.enabled or not self.has_code(source.function_id):
                    continue
                report = source.drain_until_idle(max(0.1, deadline - time.monotonic()))
                total = reports.setdefault(source.function_id, DrainReport())
                total.batches += report.batches
                total.received += report.received
                total.deleted += report.deleted
                total.failed += report.failed
                total.errors.extend(report.errors)
                busy = busy or report.received > 0
            if not busy:
                return reports

    def start_pollers(self) -> None:
        for source in self.sources:
            if self.has_code(source.function_id):
                source.start()

    def serve_forever(self, stop: threading.Event) -> None:
        self.start_pollers()
        while not stop.wait(0.5):
            pass
