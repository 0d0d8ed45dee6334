"""Cold starts of the three functions, from source and as `sam build` built them, against bare handlers.

    .venv/bin/python benchmarks/bench_cold.py [--runs 7] [--modes source,built] [--json figures.json]
    .venv/bin/python benchmarks/bench_cold.py --instructions --runs 1 --functions sync

Prints one table and asserts nothing. For each function (webhook ingress, order processor, offer
sync) and each way of running it, fresh interpreters alternate between the project's handler and a
bare stdlib + boto3 handler doing the same AWS and HTTP calls (`benchmarks/bare/*/app.py`); each run
is timed from the child's first line to the answer of its first event: every import, the module
init (`AWS_LAMBDA_FUNCTION_NAME` is set, so the functions build their runtime at import, as in
Lambda) and the first event. Interpreter start-up is excluded for both.

Ways of running:

- `source`: the repository as the developer runs it: `functions/<name>` + `layers/shared` + the dev
  venv (its `.pyc` caches written and reused).
- `built`: what Lambda runs: the function and a fresh read-only copy of the layer from
  `.aws-sam/build` (`make build` first), under `python -B -S`: no `.pyc` is ever written, so only
  what the build precompiled is cached. Behind the layer, a precompiled copy of the dev venv's boto3
  stack stands in for the Lambda runtime's own boto3 (the layer shadows it when it ships one).

Events, all against this machine (moto server provisioned from template.yaml, the Offergrid fake):
a signed `order.created` webhook (queued), an `order.created` queue message for a fresh pending
item (accepted), and a dry-run schedule event (sweep + plan of samples/catalog.json).

Every cold start, project and bare alike, starts from a fresh Offergrid rate budget: the items of
the rate-limit table (`RATE_LIMIT_TABLE`) are deleted before each run, outside its timing. The
cold starts run back to back, a dozen a minute, against one shared budget; without the reset the
sync's background lane (a bucket of about 3 tokens refilled at about 0.9 a second above the orders'
40 % reserve) is empty after the first few runs and each later cold start sleeps about 1.8 s for
its Offergrid requests (waiting for its slot), which an hourly sync never does. With it, the
wall-clock figures measure the cold start (CPU time plus I/O), not the budget's refill.

`--instructions` counts, instead of timing, the instructions each cold start executes (valgrind's
cachegrind, `--cache-sim=no`; valgrind must be installed): a figure the machine's load does not
move, so a change of a few percent shows in one run per cell where CPU medians on a shared machine
need dozens. Under valgrind a cold start takes about 20 s; its own process only (the fakes' work is
not in it), interpreter start-up included for both handlers. Instructions are not time (OpenSSL's
certificate parsing, say, runs more of them per millisecond than Python does), so the goal is judged
on CPU time; this mode tells whether a change moved the work and by how much.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
CHILD = BENCH / "_cold_child.py"
for _path in (str(ROOT / "layers" / "shared"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from devtools.local.stack import SAMPLE_CATALOG, LocalEnvironment  # noqa: E402
from devtools.local.template import FunctionSpec  # noqa: E402

GOALS = {"webhook": 1.2, "processor": 1.5, "sync": 1.5}
MODES = ("source", "built")
MODE_TITLES = {
    "source": "from source (dev venv, .pyc cached)",
    "built": "as built (.aws-sam/build, python -B, read-only layer)",
}
# The boto3 stack as the Lambda python3.13 runtime ships it (precompiled there).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
BOTO3_STACK = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3"}
SERVICEABLE_ADDRESS = {
    "street": "1 Market St",
    "city": "San Francisco",
    "state": "CA",
    "zipCode": "94105",
    "country": "US",
}
RUN_TIMEOUT_SECONDS = 120


@dataclass
class Series:
    seconds: list[float] = field(default_factory=list)
    init_seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    instructions: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    metric: str = "wall"

    def stats_ms(self) -> tuple[float, float, float]:
        """min / median / max in ms (wall, cpu) or millions (instructions)."""
        if self.metric == "instructions":
            values = [value / 1e6 for value in self.instructions]
        else:
            chosen = self.cpu_seconds if self.metric == "cpu" else self.seconds
            values = [value * 1000 for value in chosen]
        if not values:
            return (float("nan"),) * 3
        return min(values), statistics.median(values), max(values)

    @property
    def median_ms(self) -> float:
        return self.stats_ms()[1]


# ---------------------------------------------------------------------------------------------------
# What runs where
# ---------------------------------------------------------------------------------------------------
def _function_ids(env: LocalEnvironment) -> dict[str, FunctionSpec]:
    found: dict[str, FunctionSpec] = {}
    for spec in env.specs.values():
        if spec.events_of_type("Api"):
            found["webhook"] = spec
        elif spec.events_of_type("SQS"):
            found["processor"] = spec
        elif spec.events_of_type("ScheduleV2", "Schedule"):
            found["sync"] = spec
    return found


BARE_DIRS = {
    "webhook": BENCH / "bare" / "webhook_ingress",
    "processor": BENCH / "bare" / "order_processor",
    "sync": BENCH / "bare" / "offer_sync",
}


def built_layer(build_dir: Path) -> Path:
    """The layer `sam build` produced for this machine's architecture (`<build>/<LayerId>/python`)."""
    layers = sorted(path for path in build_dir.glob("*/python") if (path / "offergrid_integration").is_dir())
    if not layers:
        raise SystemExit(f"no built layer in {build_dir}: run `make build` first")
    arm = platform.machine().lower() in ("aarch64", "arm64")
    for path in layers:
        if ("arm64" in path.parent.name.lower()) == arm:
            return path
    return layers[0]


def read_only_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    for folder, _dirs, files in os.walk(target):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)  # noqa: S103 - read-only, as /opt is
    return target


def runtime_site(target: Path) -> Path:
    """The Lambda runtime's boto3 stack, stood in by a precompiled copy of the dev venv's."""
    target.mkdir(parents=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{name} is not installed in {sys.executable}")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, target / name, symlinks=True)
        else:
            shutil.copy2(origin, target / origin.name)
    compileall.compile_dir(target, quiet=1)
    return target


def make_writable(path: Path) -> None:
    for folder, _dirs, _files in os.walk(path):
        os.chmod(folder, 0o755)  # noqa: S103 - our own scratch folder, to delete it


# ---------------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------------
def webhook_event() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "events" / "webhook_order_created.json").read_text())
    return loaded


def processor_event(env: LocalEnvironment) -> tuple[dict[str, Any], str]:
    """An `order.created` queue message for a fresh pending item, as the SQS event source sends it."""
    from offergrid_integration.contract import QueuedMessage, normalise_payload

    assert env.fake is not None
    item = env.fake.add_order_item(status="pending", serviceAddress=SERVICEABLE_ADDRESS)
    payload = env.fake.webhook_payload("order.created", item["id"])
    message = QueuedMessage.for_event(
        normalise_payload(payload),
        received_at=datetime.now(UTC),
        source="webhook",
        correlation_id="bench-cold",
    )
    record = {
        "messageId": f"bench-{item['id']}",
        "receiptHandle": "bench",
        "body": message.to_json(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String", "stringListValues": [], "binaryListValues": []}
            for name, value in message.message_attributes().items()
            if value
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:orders",
        "awsRegion": "eu-west-1",
    }
    return {"Records": [record]}, str(item["id"])


def answered(function: str, result: Any) -> bool:
    if function == "webhook":
        return isinstance(result, dict) and result.get("statusCode") == 200
    if function == "processor":
        return isinstance(result, dict) and result.get("batchItemFailures") == []
    return isinstance(result, dict) and "sync" in result


# ---------------------------------------------------------------------------------------------------
# One cold start
# ---------------------------------------------------------------------------------------------------
@dataclass
class Target:
    function: str
    mode: str
    handler: str  # "project" | "bare"
    path: list[str]
    environment: dict[str, str]
    function_name: str

    def command(self, config: dict[str, Any], *, count_instructions: bool = False) -> list[str]:
        flags = ["-B", "-S"] if self.mode == "built" else []
        counter = [*VALGRIND, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
        return [
            *(counter if count_instructions else []),
            sys.executable,
            *flags,
            str(CHILD),
            json.dumps(config),
        ]


VALGRIND = ["valgrind"]
INSTRUCTIONS_LINE = re.compile(r"I\s+refs:\s+([\d,]+)")


def run_once(target: Target, event: dict[str, Any], *, count_instructions: bool = False) -> dict[str, Any]:
    """One cold start: the child's figures, with `instructions` when counted under valgrind."""
    config = {"path": target.path, "event": event, "function_name": target.function_name}
    environment = dict(target.environment)
    if target.mode == "built":
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        target.command(config, count_instructions=count_instructions),
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        cwd=target.path[0],
        check=False,
    )
    marker = completed.stdout.rfind("@@BENCH@@")
    if completed.returncode != 0 or marker < 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {completed.returncode}: {' | '.join(tail)}"}
    figures: dict[str, Any] = json.loads(completed.stdout[marker + len("@@BENCH@@") :])
    if count_instructions:
        counted = INSTRUCTIONS_LINE.findall(completed.stderr)
        if not counted:
            return {"error": "valgrind printed no instruction count"}
        figures["instructions"] = int(counted[-1].replace(",", ""))
    return figures


# ---------------------------------------------------------------------------------------------------
# Layer size (the boto3-stack decision)
# ---------------------------------------------------------------------------------------------------
def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


def layer_sizes(layer: Path) -> dict[str, float]:
    unzipped = sum(path.stat().st_size for path in _files(layer))
    boto_unzipped = sum(
        path.stat().st_size
        for path in _files(layer)
        if path.relative_to(layer).parts[0].split("-")[0] in BOTO3_STACK
        or path.relative_to(layer).parts[0] in BOTO3_STACK
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in _files(layer):
            archive.write(path, Path("python") / path.relative_to(layer))
    pycs = sum(1 for path in _files(layer) if path.suffix == ".pyc")
    return {
        "unzipped_mb": unzipped / 1e6,
        "zipped_mb": len(buffer.getvalue()) / 1e6,
        "boto3_stack_unzipped_mb": boto_unzipped / 1e6,
        "pyc_files": pycs,
    }


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------
def _cell(series: Series) -> str:
    low, median, high = series.stats_ms()
    return f"{low:6.0f} {median:6.0f} {high:6.0f}"


def print_table(results: dict[tuple[str, str, str], Series], functions: list[str], modes: list[str]) -> None:
    width = 24
    for mode in modes:
        print(f"{mode}: {MODE_TITLES[mode]}")
    rows = [
        [f"{'function':<10} {'handler':<8}", *(f"{mode:^{width}}" for mode in modes)],
        [" " * 19, *(f"{'min':>6} {'median':>6} {'max':>6}".ljust(width) for _ in modes)],
    ]
    for function in functions:
        for handler in ("project", "bare"):
            label = f"{function if handler == 'project' else '':<10} {handler:<8}"
            rows.append([label, *(_cell(results[(function, mode, handler)]).ljust(width) for mode in modes)])
        ratios, verdicts = [], []
        for mode in modes:
            project, bare = results[(function, mode, "project")], results[(function, mode, "bare")]
            ratio = project.median_ms / bare.median_ms
            ratios.append(
                f"{ratio:5.2f}x median {project.stats_ms()[0] / bare.stats_ms()[0]:5.2f}x min".ljust(width)
            )
            verdict = "ok" if ratio <= GOALS[function] else "MISSED"
            if project.metric == "instructions":
                verdict = "see CPU"
            verdicts.append(f"goal {GOALS[function]}x: {verdict}".ljust(width))
        rows.append([f"{'':<10} {'ratio':<8}", *ratios])
        rows.append([f"{'':<10} {'':<8}", *verdicts])
    for row in rows:
        print(" | ".join(row) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cold starts from source and as built, vs bare handlers")
    parser.add_argument("--runs", type=int, default=7, help="cold starts per cell (after one warm-up)")
    parser.add_argument("--modes", default=",".join(MODES), help="source,built")
    parser.add_argument("--functions", default=",".join(GOALS), help="webhook,processor,sync")
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under valgrind instead of timing (deterministic; ~20 s a run)",
    )
    args = parser.parse_args(argv)
    if args.instructions and shutil.which(VALGRIND[0]) is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    modes = [mode for mode in args.modes.split(",") if mode]
    functions = [name for name in args.functions.split(",") if name]

    scratch = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    sizes: dict[str, float] = {}
    try:
        layer_copy: Path | None = None
        runtime: Path | None = None
        if "built" in modes:
            layer = built_layer(args.build_dir)
            sizes = layer_sizes(layer)
            layer_copy = read_only_copy(layer, scratch / "opt" / "python")
            runtime = runtime_site(scratch / "runtime")
            print(
                f"built layer {layer.relative_to(ROOT) if layer.is_relative_to(ROOT) else layer}: "
                f"{sizes['unzipped_mb']:.1f} MB unzipped, {sizes['zipped_mb']:.1f} MB zipped, "
                f"boto3 stack {sizes['boto3_stack_unzipped_mb']:.1f} MB unzipped, "
                f"{sizes['pyc_files']:.0f} .pyc"
            )
        env = LocalEnvironment(with_api=False, log_dir=None, catalog=SAMPLE_CATALOG)
        with contextlib.redirect_stdout(sys.stderr), env.start(warm=False):
            results = measure(env, args, functions, modes, layer_copy, runtime)
        if args.instructions:
            print(
                f"\npython {sys.version.split()[0]}, {platform.machine()}; {args.runs} cold starts per cell "
                "under valgrind: millions of instructions executed by the function's process (interpreter "
                "start-up included)\n"
            )
            for series in results.values():
                series.metric = "instructions"
            print_table(results, functions, modes)
        else:
            print(
                f"\npython {sys.version.split()[0]}, {platform.machine()}, {os.cpu_count()} CPUs; "
                f"{args.runs} cold starts per cell (ms, child's first line to the first event's answer)\n"
            )
            print_table(results, functions, modes)
            print(
                "\nThe same runs in CPU time of the function's process (a shared machine's load moves it "
                "less; the fakes' work is not in it):\n"
            )
            for series in results.values():
                series.metric = "cpu"
            print_table(results, functions, modes)
        for series in results.values():
            series.metric = "wall"
        for (function, mode, handler), series in results.items():
            for failure in sorted(set(series.failures)):
                print(f"  ! {function} {mode} {handler}: {failure}")
        if args.json is not None:
            document = {
                "runs": args.runs,
                "layer": sizes,
                "cells": {
                    f"{function}/{mode}/{handler}": {
                        "min_ms": series.stats_ms()[0],
                        "median_ms": series.stats_ms()[1],
                        "max_ms": series.stats_ms()[2],
                        "median_init_ms": statistics.median(series.init_seconds) * 1000
                        if series.init_seconds
                        else None,
                        "cpu_min_ms": min(series.cpu_seconds) * 1000 if series.cpu_seconds else None,
                        "cpu_median_ms": statistics.median(series.cpu_seconds) * 1000
                        if series.cpu_seconds
                        else None,
                        "median_instructions": statistics.median(series.instructions)
                        if series.instructions
                        else None,
                        "failures": series.failures,
                    }
                    for (function, mode, handler), series in results.items()
                },
            }
            args.json.write_text(json.dumps(document, indent=2) + "\n")
    finally:
        make_writable(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def measure(
    env: LocalEnvironment,
    args: argparse.Namespace,
    functions: list[str],
    modes: list[str],
    layer_copy: Path | None,
    runtime: Path | None,
) -> dict[tuple[str, str, str], Series]:
    specs = _function_ids(env)
    results: dict[tuple[str, str, str], Series] = {}
    for function in functions:
        spec = specs[function]
        environment = dict(env.workers[spec.logical_id].environment)
        for mode in modes:
            if mode == "source":
                project_path = [str(spec.code_uri), str(ROOT / "layers" / "shared")]
                bare_path = [str(BARE_DIRS[function])]
            else:
                assert layer_copy is not None
                assert runtime is not None
                project_path = [str(args.build_dir / spec.logical_id), str(layer_copy), str(runtime)]
                bare_path = [str(BARE_DIRS[function]), str(runtime)]
            targets = [
                Target(function, mode, "project", project_path, environment, spec.logical_id),
                Target(function, mode, "bare", bare_path, environment, spec.logical_id),
            ]
            for target in targets:
                results[(function, mode, target.handler)] = Series()
            print(f"  {function} {mode} ...", file=sys.stderr, flush=True)
            for run in range(args.runs + 1):  # the first is a warm-up (page cache, source .pyc)
                for target in targets if run % 2 == 0 else reversed(targets):  # alternate the order
                    event = _event(env, function)
                    fresh_rate_budget(env, environment)
                    # the warm-up is not counted: it runs without valgrind (it writes the source .pyc)
                    figures = run_once(target, event, count_instructions=args.instructions and run > 0)
                    series = results[(function, mode, target.handler)]
                    if "error" in figures:
                        series.failures.append(str(figures["error"]))
                        continue
                    if not answered(function, figures.get("result")):
                        series.failures.append(f"unexpected answer: {str(figures.get('result'))[:160]}")
                    if run > 0:
                        series.seconds.append(float(figures["seconds"]))
                        series.init_seconds.append(float(figures["init_seconds"]))
                        series.cpu_seconds.append(float(figures["cpu_seconds"]))
                        if "instructions" in figures:
                            series.instructions.append(float(figures["instructions"]))
    return results


def fresh_rate_budget(env: LocalEnvironment, environment: dict[str, str]) -> int:
    """Delete every item of the rate-limit table (the budgets of all keys, the bare handler's
    counter), so the next cold start starts from a full budget, as an hourly run does. Returns how
    many items were deleted."""
    table = environment.get("RATE_LIMIT_TABLE")
    if not table:
        return 0
    assert env.stack is not None
    dynamodb = env.stack.client("dynamodb")
    deleted = 0
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk"):
        for item in page.get("Items", []):
            dynamodb.delete_item(TableName=table, Key={"pk": item["pk"]})
            deleted += 1
    return deleted


def _event(env: LocalEnvironment, function: str) -> dict[str, Any]:
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "webhook": webhook_event,
        "processor": lambda: processor_event(env)[0],
        "sync": lambda: {"dryRun": True},
    }
    return builders[function]()


if __name__ == "__main__":
    raise SystemExit(main())
