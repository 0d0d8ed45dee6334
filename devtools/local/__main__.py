"""`.venv/bin/python -m devtools.local`: the stack on this machine, without Docker and without AWS.

    .venv/bin/python -m devtools.local up           # moto + Offergrid fake + API + pollers, until Ctrl-C
    .venv/bin/python -m devtools.local up --parameter-overrides OrderProcessingEnabled=false   # queue only
    .venv/bin/python -m devtools.local invoke WebhookIngressFunction -e events/webhook_order_created.json \\
        --env-vars events/env.json                   # what `sam local invoke` does, against `up`'s stack
    .venv/bin/python -m devtools.local invoke OfferSyncFunction -e events/scheduled_offer_sync.json \\
        --ephemeral                                  # a throw-away stack for one invocation
    .venv/bin/python -m devtools.local env-vars > .local/env.json   # sam's --env-vars file for `up`'s stack
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from devtools.local.env_vars import render as render_env_vars
from devtools.local.env_vars import to_json as env_vars_json
from devtools.local.provision import LocalStack, LocalStackNotRunning
from devtools.local.runtime import FunctionWorker, InvokeResult
from devtools.local.stack import (
    DEFAULT_STACK_FILE,
    DEFAULT_TEMPLATE,
    SAMPLE_CATALOG,
    LocalEnvironment,
    function_environment,
)
from devtools.local.template import TemplateError, load_template


def _parameters(pairs: list[str]) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--parameter-overrides expects Name=Value, got {pair!r}")
        parameters[name.removeprefix("ParameterKey=")] = value
    return parameters


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m devtools.local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="default: template.yaml")
        p.add_argument(
            "--stack-file", type=Path, default=DEFAULT_STACK_FILE, help="default: .local/stack.json"
        )
        p.add_argument(
            "--parameter-overrides",
            nargs="*",
            default=[],
            metavar="NAME=VALUE",
            help="template parameter values (as sam deploy --parameter-overrides)",
        )

    up = sub.add_parser("up", help="start the local stack and keep it running until Ctrl-C")
    common(up)
    up.add_argument("--port", type=int, default=3000, help="local API Gateway port (default 3000; 0 = any)")
    up.add_argument("--moto-port", type=int, default=5000, help="moto server port (default 5000; 0 = any)")
    up.add_argument("--fake-port", type=int, default=8900, help="Offergrid fake port (default 8900; 0 = any)")
    up.add_argument(
        "--lambda-port",
        type=int,
        default=0,
        help="the local Lambda Invoke API's port, as sam local start-lambda serves it (default: any free "
        "port; the tools read it from the stack file)",
    )
    up.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="the fake's clock speed (60 = a minute per second; default 1)",
    )
    up.add_argument(
        "--retry-delay",
        type=float,
        default=2.0,
        help="compressed visibility timeout before a failed record is retried (s, default 2)",
    )
    up.add_argument("--env-vars", type=Path, help="sam-style env-vars file applied to every worker")
    catalog = up.add_mutually_exclusive_group()
    catalog.add_argument(
        "--catalog",
        type=Path,
        default=SAMPLE_CATALOG,
        help="uploaded where the offer sync reads its catalog (the catalog bucket, at the "
        "CatalogObjectKey parameter's key); default samples/catalog.json",
    )
    catalog.add_argument(
        "--no-catalog",
        dest="catalog",
        action="store_const",
        const=None,
        help="leave the catalog bucket empty (the sync then fails until a catalog is uploaded)",
    )

    up.add_argument(
        "--no-seed",
        dest="seed",
        action="store_false",
        help="do not add the order items the sample events name (events/) to the Offergrid fake",
    )

    invoke = sub.add_parser("invoke", help="invoke one function once, as `sam local invoke` does")
    common(invoke)
    invoke.add_argument("function", help="logical id of an AWS::Serverless::Function in the template")
    invoke.add_argument("-e", "--event", type=Path, help="event JSON file ('-' = stdin; default: {})")
    invoke.add_argument(
        "--env-vars",
        type=Path,
        help='sam\'s format: {"<LogicalId>": {...}, "Parameters": {...}}; only variables '
        "the template declares are applied",
    )
    invoke.add_argument(
        "--ephemeral",
        action="store_true",
        help="start a throw-away stack (moto + fake) for this invocation instead of using "
        "the one `up` started",
    )
    env_vars = sub.add_parser(
        "env-vars",
        help="print the `sam local invoke --env-vars` file for the running stack",
        description="Print the env-vars JSON (sam's format) for the stack `up` started: every "
        "variable the template declares, with the local stack's values. Against `make local` on its "
        "default ports this is events/env.json.",
    )
    env_vars.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="default: template.yaml")
    env_vars.add_argument(
        "--stack-file", type=Path, default=DEFAULT_STACK_FILE, help="default: .local/stack.json"
    )
    return parser


def _read_event(path: Path | None) -> Any:
    if path is None:
        return {}
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    return json.loads(text)


def _read_env_vars(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: an env-vars file is a JSON object")
    return data


def warn_ignored(function_id: str, ignored: list[str], source: str) -> None:
    if ignored:
        print(
            f"warning: {source} sets {', '.join(ignored)} for {function_id}, but template.yaml does not "
            f"declare {'it' if len(ignored) == 1 else 'them'} in the function's Environment: ignored "
            "(sam local invoke ignores them too; declare them in the template to use them)",
            file=sys.stderr,
        )


def local_invoke(
    function_id: str,
    event: Any,
    *,
    stack_file: Path = DEFAULT_STACK_FILE,
    template_path: Path = DEFAULT_TEMPLATE,
    env_vars: Mapping[str, Any] | None = None,
    warm_workers: dict[str, FunctionWorker] | None = None,
) -> tuple[InvokeResult, list[str]]:
    """Invoke `function_id` once against the running local stack; returns the outcome and ignored vars.

    `warm_workers` (a cache the caller owns and stops) reuses a worker whose environment is the
    same, like a warm container; without it each call is a cold start, as with `sam local invoke`.
    """
    stack = LocalStack.load(stack_file)
    template = load_template(template_path).with_parameters(
        stack.parameters, region=stack.region, stack_name=stack.stack_name
    )
    spec = template.function(function_id, stack.resolver(template))
    environment, ignored = function_environment(spec, stack, env_vars)
    key = f"{function_id}:{json.dumps(environment, sort_keys=True)}"
    if warm_workers is not None and key in warm_workers:
        return warm_workers[key].invoke(event), ignored
    worker = FunctionWorker(spec, environment, log_path=None, region=stack.region)
    if warm_workers is not None:
        warm_workers[key] = worker
        return worker.invoke(event), ignored
    with worker:
        return worker.invoke(event), ignored


def run_invoke(args: argparse.Namespace) -> int:
    event = _read_event(args.event)
    env_vars = _read_env_vars(args.env_vars)
    source = str(args.env_vars)
    if args.ephemeral:
        with LocalEnvironment(
            template_path=args.template,
            parameters=_parameters(args.parameter_overrides),
            log_dir=None,
            env_vars=env_vars,
            with_api=False,
        ).start(warm=False) as env:
            env.upload_catalog()  # as `up` does, so a sync invoked here has the sample catalog to read
            warn_ignored(args.function, env.ignored_env_vars.get(args.function, []), source)
            outcome = env.invoke(args.function, event)
    else:
        try:
            outcome, ignored = local_invoke(
                args.function,
                event,
                stack_file=args.stack_file,
                template_path=args.template,
                env_vars=env_vars,
            )
        except LocalStackNotRunning as error:
            raise LocalStackNotRunning(f"{error} (or pass --ephemeral for a throw-away stack)") from None
        warn_ignored(args.function, ignored, source)
    print(outcome.to_json())
    if not outcome.ok:
        return 1
    problem = unsuccessful_result(outcome.result)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


def unsuccessful_result(result: Any) -> str | None:
    """Why a handler's answer is not a success, though it returned: a non-2xx HTTP answer (API
    Gateway proxy result) or records an SQS partial batch response reports as failed."""
    if not isinstance(result, dict):
        return None
    status = result.get("statusCode")
    if isinstance(status, int) and not 200 <= status < 300:
        return f"the function answered HTTP {status}"
    failures = result.get("batchItemFailures")
    if isinstance(failures, list) and failures:
        return f"{len(failures)} record(s) failed (batchItemFailures): SQS would retry them"
    if result.get("status") == "Failed" and "checks" in result:
        return "the pre-traffic hook's checks failed: CodeDeploy would roll the release back"
    return None


def environment_from_args(args: argparse.Namespace) -> LocalEnvironment:
    """The `LocalEnvironment` that `up` starts for these arguments (not started)."""
    return LocalEnvironment(
        template_path=args.template,
        parameters=_parameters(args.parameter_overrides),
        time_scale=args.time_scale,
        moto_port=args.moto_port,
        api_port=args.port,
        fake_port=args.fake_port,
        lambda_port=args.lambda_port,
        retry_delay=args.retry_delay,
        stack_file=args.stack_file,
        env_vars=_read_env_vars(args.env_vars),
        catalog=args.catalog,
        seed_orders=args.seed,
    )


def summary(env: LocalEnvironment, failures: Mapping[str, str]) -> list[str]:
    """What `up` prints once the stack runs: endpoints, functions, event sources, the catalog."""
    assert env.stack is not None
    lines = [f"  {name:<50} {url}" for name, url in env.stack.urls.items()]
    for function_id in env.workers:
        state = f"NOT RUNNING: {failures[function_id]}" if function_id in failures else "warm"
        lines.append(f"  function {function_id:<41} {state}")
    for source in env.sources:
        state = "polling" if source.enabled else "PAUSED (Enabled is false: messages wait on the queue)"
        queue = source.queue_url.rsplit("/", 1)[-1]
        lines.append(f"  {'poller ' + source.function_id:<50} {queue}: {state}")
    if env.catalog is None:
        lines.append(f"  {'catalog':<50} not uploaded (--no-catalog)")
    for location in env.uploaded_catalogs:
        lines.append(f"  {'catalog':<50} {location} (from {env.catalog})")
    if env.seeded_items:
        seeded = f"{', '.join(env.seeded_items)} (pending; the items events/ names)"
        lines.append(f"  {'offergrid order items':<50} {seeded}")
    lines.append(f"  logs{'':<46} {env.log_dir}/<Function>.log")
    return lines


def run_up(args: argparse.Namespace) -> int:
    env = environment_from_args(args)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("starting the local stack (moto server, Offergrid fake, workers)...", flush=True)
    with env.start(warm=False):
        failures = env.warm_up()
        assert env.stack is not None
        for function_id, ignored in env.ignored_env_vars.items():
            warn_ignored(function_id, ignored, str(args.env_vars))
        print(f"\nlocal stack up ({env.timings['start']:.1f} s); endpoints in {args.stack_file}:")
        print("\n".join(summary(env, failures)))
        print("\nexport AWS_ENDPOINT_URL=" + env.stack.endpoint_url + "   # for the aws CLI / boto3 / replay")
        print(".venv/bin/python -m devtools.local env-vars  # sam's --env-vars file (= events/env.json)")
        if env.seeded_items:
            print(
                'make replay ARGS="webhook events/webhook_order_created.json"  # another terminal: a decision'
            )
        print("Ctrl-C to stop.", flush=True)
        env.serve_forever(stop)
    print("stopped.")
    return 0


def run_env_vars(args: argparse.Namespace) -> int:
    stack = LocalStack.load(args.stack_file)
    sys.stdout.write(env_vars_json(render_env_vars(stack, args.template)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "invoke":
            return run_invoke(args)
        if args.command == "env-vars":
            return run_env_vars(args)
        return run_up(args)
    except (TemplateError, FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
