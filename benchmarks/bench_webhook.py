"""Webhook ingress figures: cold start vs a bare baseline, warm overhead, peak memory.

    .venv/bin/python benchmarks/bench_webhook.py [--runs 9] [--requests 3000]

Prints figures, asserts nothing (a noisy machine makes timing assertions lie):

1. cold import + init of `functions/webhook_ingress/app.py` (import, settings, secret store, SQS
   client) vs `baseline_webhook.py` (stdlib hmac + a boto3 SQS client), each in fresh interpreters,
   alternating, median of `--runs`; the ratio against the 1.2x goal; the heaviest top-level imports
   of the handler (`-X importtime`).
2. warm per-request overhead excluding SQS and S3: the full Lambda handler (Powertools logging, metrics,
   tracing decorators) and the domain alone, with the queue port and the archive's S3 PUT replaced by
   no-ops (the archive's record, its worker thread and the wait for it stay), p50/p99 us.
3. peak RSS of a handler process after init and a warm run including 255 KiB bodies and bodies of
   the largest size taken (6 MiB, non-ASCII: docs/decisions.md#2), vs 128 MB.

No AWS is called: the SQS client is created but never used, the secret is a static provider.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "local-dev-webhook-secret"
MEMORY_GOAL_MB = 128
COLD_RATIO_GOAL = 1.2

CHILD_ENV = {
    "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "shared"), str(ROOT / "benchmarks")]),
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "OFFERGRID_WEBHOOK_SECRET": "offergrid/bench/webhook-secret",
    "ORDERS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/offergrid-orders",
    # As the template sets them: the archive is built at init (its S3 client on the first delivery)
    "CLAIM_CHECK_BUCKET": "offergrid-webhook-bench",
    "DELIVERY_ARCHIVE_BUCKET": "offergrid-webhook-bench",
    "POWERTOOLS_SERVICE_NAME": "webhook-ingress",
    "POWERTOOLS_METRICS_NAMESPACE": "OffergridIntegrationBench",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

# Fresh interpreter: time only what the Lambda init phase would run for our code.
COLD_CHILD = """
import time
started = time.perf_counter()
{body}
elapsed = time.perf_counter() - started
import json, resource
print(json.dumps({{"seconds": elapsed, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""
HANDLER_INIT = "from functions.webhook_ingress import app\napp.get_ingress()"
BASELINE_INIT = "import baseline_webhook"
# Where the difference goes: each dependency's import cost on top of the baseline.
BASELINE_CORE = "import boto3\nboto3.client('sqs')"
ATTRIBUTION = {
    "+ aws_xray_sdk.core (Tracer provider)": "import aws_xray_sdk.core",
    "+ pydantic (settings + event model)": "import pydantic",
    "+ powertools logging + metrics": "import aws_lambda_powertools.logging, aws_lambda_powertools.metrics",
    "+ powertools parameters (secrets)": "from aws_lambda_powertools.utilities import parameters",
}


def child_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(CHILD_ENV)
    return env


def run_child(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, *args], env=child_env(), capture_output=True, text=True, check=True, cwd=ROOT
    )


def cold(body: str) -> dict[str, float]:
    result: dict[str, float] = json.loads(run_child(["-c", COLD_CHILD.format(body=body)]).stdout)
    return result


def heaviest_imports(limit: int = 8) -> list[tuple[str, float]]:
    stderr = run_child(["-X", "importtime", "-c", HANDLER_INIT]).stderr
    top: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+\s+\|\s+(\d+)\s+\|( *)(\S+)", line)
        if match and 3 <= len(match.group(2)) <= 5:  # the handler's direct and second-level imports
            top.append((match.group(3), int(match.group(1)) / 1000))
    return sorted(top, key=lambda item: item[1], reverse=True)[:limit]


def timed(call: Callable[[], Any], times: int) -> tuple[list[float], Any]:
    """Microseconds each of `times` calls took, and what the last one returned."""
    samples, result = [], None
    for _ in range(times):
        started = time.perf_counter_ns()
        result = call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples, result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- warm (runs in its own child process, so its RSS is the handler's alone) ---------------------------
@dataclass
class BenchContext:
    function_name: str = "webhook-ingress-bench"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:webhook-ingress-bench"
    aws_request_id: str = "bench-request"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class NoopQueue:
    def send(self, message_body: str, attributes: dict[str, str]) -> str | None:
        return "noop"


class NoopArchive:
    """The S3 PUT replaced by a no-op, as the SQS send is: what stays is the archive's own work (the
    record's JSON, the worker thread's handoff and the wait for it)."""

    def put(self, delivery: Any) -> str:
        delivery.to_json()
        return str(delivery.key)


class StaticSecrets:
    def __call__(self, *, force_refresh: bool = False) -> list[str]:
        return [DEV_SECRET]


def warm(requests: int) -> dict[str, Any]:
    import logging

    from functions.webhook_ingress import app
    from offergrid_integration.observability import logger
    from offergrid_integration.webhooks.ingress import WebhookIngress

    def event(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))
        return loaded

    app.get_ingress()  # the real init (settings, secret store, SQS client), as in Lambda: counts in RSS
    from offergrid_integration.archive import BackgroundArchive

    ingress = WebhookIngress(
        secrets=StaticSecrets(), queue=NoopQueue(), archive=BackgroundArchive(NoopArchive())
    )
    app.reset(ingress)
    created = event("webhook_order_created.json")
    bad = event("webhook_bad_signature.json")
    from offergrid_integration.signature import sign

    large = dict(created)
    large_body = json.dumps({"event": "order.created", "itemId": "item-big", "pad": "x" * (255 * 1024)})
    large["body"] = large_body
    large["headers"] = {**created["headers"], "X-Offergrid-Signature": sign(large_body, DEV_SECRET)}
    large.pop("multiValueHeaders")
    # The largest body taken (docs/decisions.md#2), of 2-byte characters: what a claim check carries.
    largest = dict(large)
    prefix = '{"event":"order.cancelled","orderId":"order-big","itemId":"item-big","reason":"'
    largest_body = prefix + "Ж" * ((6 * 1024 * 1024 - len(prefix) - 2) // 2) + '"}'
    largest["body"] = largest_body
    largest["headers"] = {**created["headers"], "X-Offergrid-Signature": sign(largest_body, DEV_SECRET)}
    context = BenchContext()
    figures: dict[str, Any] = {}

    handler_stream = logger.registered_handler
    assert isinstance(handler_stream, logging.StreamHandler)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        handler_stream.setStream(devnull)  # log lines and EMF are written, as in Lambda, but discarded
        cases: dict[str, Callable[[], object]] = {
            "handler, signed order.created": lambda: app.lambda_handler(created, context),
            "handler, bad signature (401)": lambda: app.lambda_handler(bad, context),
            "domain only, signed order.created": lambda: ingress.handle(created, correlation_id="c"),
        }
        for label, call in cases.items():
            for _ in range(min(200, requests)):  # warm-up
                call()
            samples, _ = timed(call, requests)
            figures[label] = {"p50": percentile(samples, 0.50), "p99": percentile(samples, 0.99)}
        for label, body_event, times in (
            ("handler, 255 KiB body", large, 20),
            ("handler, 6 MiB non-ASCII body", largest, 5),
        ):
            samples, response = timed(functools.partial(app.lambda_handler, body_event, context), times)
            assert response["statusCode"] == 200
            figures[label] = {"p50": percentile(samples, 0.5), "p99": max(samples)}
    import resource

    return {"latency_us": figures, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


# --- report ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="webhook ingress benchmark (prints figures)")
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per cold measurement")
    parser.add_argument("--requests", type=int, default=3000, help="warm requests per case")
    parser.add_argument("--no-attribution", action="store_true", help="skip the per-dependency costs")
    parser.add_argument("--warm-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warm_child:
        print(json.dumps(warm(args.requests)))
        return 0

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; cold runs {args.runs}\n")
    handler_runs: list[dict[str, float]] = []
    baseline_runs: list[dict[str, float]] = []
    cold(HANDLER_INIT)  # let the OS page cache settle for both
    cold(BASELINE_INIT)
    for _ in range(args.runs):  # alternate, so drift in machine load hits both alike
        handler_runs.append(cold(HANDLER_INIT))
        baseline_runs.append(cold(BASELINE_INIT))
    handler_ms = statistics.median(run["seconds"] for run in handler_runs) * 1000
    baseline_ms = statistics.median(run["seconds"] for run in baseline_runs) * 1000
    ratio = handler_ms / baseline_ms
    verdict = "meets" if ratio <= COLD_RATIO_GOAL else "MISSES"
    print("Cold import + init (median, fresh interpreter, interpreter start-up excluded)")
    print(f"  webhook handler   {handler_ms:8.1f} ms")
    print(f"  bare baseline     {baseline_ms:8.1f} ms   (stdlib hmac + boto3 SQS client)")
    print(f"  ratio             {ratio:8.2f} x   goal <= {COLD_RATIO_GOAL} x: {verdict}")
    print("  heaviest imports under the handler (cumulative ms, one -X importtime run, inflated):")
    for module, ms in heaviest_imports():
        print(f"    {module:<40} {ms:7.1f}")

    if not args.no_attribution:
        print("  attribution: median import cost on top of boto3 + an SQS client, fresh interpreters:")
        core = statistics.median(cold(BASELINE_CORE)["seconds"] for _ in range(args.runs))
        for label, code in ATTRIBUTION.items():
            extra = statistics.median(cold(BASELINE_CORE + "\n" + code)["seconds"] for _ in range(args.runs))
            print(f"    {label:<40} {(extra - core) * 1000:+7.1f} ms")

    warm_args = [str(Path(__file__)), "--warm-child", "--requests", str(args.requests)]
    warm_result = json.loads(run_child(warm_args).stdout)
    print(f"\nWarm per-request overhead, SQS replaced by a no-op ({args.requests} requests per case)")
    for label, figures in warm_result["latency_us"].items():
        print(f"  {label:<36} p50 {figures['p50']:8.1f} us   p99 {figures['p99']:8.1f} us")

    rss_mb = warm_result["maxrss_kb"] / 1024
    baseline_rss_mb = statistics.median(run["maxrss_kb"] for run in baseline_runs) / 1024
    handler_cold_rss_mb = statistics.median(run["maxrss_kb"] for run in handler_runs) / 1024
    print("\nPeak RSS (ru_maxrss)")
    print(f"  handler after init             {handler_cold_rss_mb:7.1f} MB")
    print(
        f"  handler after the warm run     {rss_mb:7.1f} MB   goal < {MEMORY_GOAL_MB} MB: "
        f"{'meets' if rss_mb < MEMORY_GOAL_MB else 'MISSES'}"
    )
    print(f"  baseline after init            {baseline_rss_mb:7.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
