"""`.venv/bin/python -m devtools.local`: the stack on this machine, without Docker and without AWS.

    .venv/bin/python -m devtools.local up           # moto + Offergrid fake + API + pollers, until Ctrl-C
    .venv/bin/python -m devtools.local up --moto-port 5001   # a port of your choice (0 = any free one)
    .venv/bin/python -m devtools.local up --parameter-overrides OrderProcessingEnabled=false   # queue only
    .venv/bin/python -m devtools.local invoke OrderProcessorFunction   # the function's sample event
    .venv/bin/python -m devtools.local invoke WebhookIngressFunction -e events/webhook_order_created.json \\
        --env-vars events/env.json                   # what `sam local invoke` does, against `up`'s stack
    .venv/bin/python -m devtools.local invoke OfferSyncFunction -e events/scheduled_offer_sync.json \\
        --ephemeral                                  # a throw-away stack for one invocation
    .venv/bin/python -m devtools.local env-vars > .local/env.json   # sam's --env-vars file for `up`'s stack
    eval "$(.venv/bin/python -m devtools.local exports)"   # the running stack's AWS settings, in this shell

`up` takes 3000 (API), 5000 (moto) and 8900 (the fake) when they are free and other free ports when
they are not; a port given with --port / --moto-port / --fake-port (make local PORT= MOTO_PORT=
FAKE_PORT=) is that port, or the command stops at once saying it is in use. The ports taken are in
.local/stack.json, which `invoke`, `env-vars`, `exports` and `devtools.replay` read.

Exit status of `invoke`: 0 the function succeeded; 1 it failed (raised, answered a non-2xx HTTP
status, or a record of its SQS batch failed, to be retried or for good); 2 nothing was invoked (a
flag or file at fault, or no local stack running: one line on stderr says which); 141 stdout closed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any, Final

from devtools.cli_output import FileError, quiet_on_closed_pipe, read_json_file
from devtools.local.env_vars import render as render_env_vars
from devtools.local.env_vars import stack_exports
from devtools.local.env_vars import to_json as env_vars_json
from devtools.local.events import EVENTS_DIR, default_event
from devtools.local.outcomes import record_outcomes, unsuccessful
from devtools.local.outcomes import summary as invoke_summary
from devtools.local.ports import LOCAL_PORTS, PortInUse, choose_port, start_command
from devtools.local.provision import LocalStack, LocalStackNotRunning
from devtools.local.runtime import REPO_ROOT, FunctionWorker, InvokeResult
from devtools.local.stack import (
    DEFAULT_STACK_FILE,
    DEFAULT_TEMPLATE,
    SAMPLE_CATALOG,
    LocalEnvironment,
    function_environment,
)
from devtools.local.template import TemplateError, load_template

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_NOT_RUN: Final = 2
COMMITTED_ENV_VARS: Final = EVENTS_DIR / "env.json"


def _parameters(pairs: list[str]) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--parameter-overrides expects Name=Value, got {pair!r}")
        parameters[name.removeprefix("ParameterKey=")] = value
    return parameters


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port number, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535 (0 = any free port), not {value}")
    return value


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
    for port in LOCAL_PORTS.values():
        up.add_argument(
            port.flag,
            type=_port,
            default=None,
            help=f"{port.what}'s port (make local {port.variable}=...; default {port.usual} when free, "
            "else any free port; 0 = any free port)",
        )
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

    invoke = sub.add_parser(
        "invoke",
        help="invoke one function once, as `sam local invoke` does",
        description="Invoke one function once with an event, against the stack `up` started (or a "
        "throw-away one with --ephemeral). stdout: the handler's result (JSON); stderr: its logs, "
        "then one line saying what happened. Exit 0 success, 1 the function failed, 2 nothing "
        "was invoked.",
    )
    common(invoke)
    invoke.add_argument("function", help="logical id of an AWS::Serverless::Function in the template")
    invoke.add_argument(
        "-e",
        "--event",
        type=Path,
        help="event JSON file ('-' = stdin; default: the function's sample event in events/, "
        "as make invoke without EVENT)",
    )
    invoke.add_argument(
        "--env-vars",
        type=Path,
        help='sam\'s format: {"<LogicalId>": {...}, "Parameters": {...}}; only variables '
        "the template declares are applied",
    )
    invoke.add_argument(
        "--ephemeral",
        action="store_true",
        help="start a throw-away stack (moto + fake, seeded with the order items events/ names, "
        "the sample catalog uploaded) for this invocation instead of using the one `up` started",
    )
    for name, text in (
        (
            "env-vars",
            "print the `sam local invoke --env-vars` file for the running stack (events/env.json on "
            "the usual ports)",
        ),
        (
            "exports",
            "print the running stack's settings for a shell (AWS_ENDPOINT_URL, region, credentials, "
            'OFFERGRID_FAKE_URL): eval "$(.venv/bin/python -m devtools.local exports)"',
        ),
    ):
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="default: template.yaml")
        command.add_argument(
            "--stack-file", type=Path, default=DEFAULT_STACK_FILE, help="default: .local/stack.json"
        )
    return parser


# ---------------------------------------------------------------------------------------------------
# invoke
# ---------------------------------------------------------------------------------------------------
def _read_env_vars(path: Path | None) -> dict[str, Any] | None:
    """sam's env-vars file: `{"Parameters": {NAME: value}, "<LogicalId>": {NAME: value}}`, checked
    whole before anything starts, every problem naming the flag and the file."""
    if path is None:
        return None
    data = read_json_file(path, "--env-vars")
    where = f"--env-vars {path}"
    if not isinstance(data, dict):
        raise FileError(
            f'{where}: an env-vars file is a JSON object, {{"<LogicalId>": {{...}}, "Parameters": {{...}}}}'
        )
    for section, variables in data.items():
        if not isinstance(variables, dict):
            raise FileError(
                f"{where}: {section!r} is a {type(variables).__name__}, not an object of NAME: value"
            )
        for name, value in variables.items():
            if not isinstance(value, str | int | float | bool):
                raise FileError(
                    f"{where}: {section}.{name} is a {type(value).__name__}, not a text or number"
                )
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
    stack: LocalStack | None = None,
    template_path: Path = DEFAULT_TEMPLATE,
    env_vars: Mapping[str, Any] | None = None,
    warm_workers: dict[str, FunctionWorker] | None = None,
    log_fd: int = 2,
) -> tuple[InvokeResult, list[str]]:
    """Invoke `function_id` once against the running local stack (`stack`, else the one in
    `stack_file`); returns the outcome and the ignored env vars. The function logs to `log_fd`.

    `warm_workers` (a cache the caller owns and stops) reuses a worker whose environment is the
    same, like a warm container; without it each call is a cold start, as with `sam local invoke`.
    """
    stack = stack or LocalStack.load(stack_file)
    template = load_template(template_path).with_parameters(
        stack.parameters, region=stack.region, stack_name=stack.stack_name
    )
    spec = template.function(function_id, stack.resolver(template))
    environment, ignored = function_environment(spec, stack, env_vars)
    key = f"{function_id}:{json.dumps(environment, sort_keys=True)}"
    if warm_workers is not None and key in warm_workers:
        return warm_workers[key].invoke(event), ignored
    worker = FunctionWorker(spec, environment, log_path=None, region=stack.region, log_fd=log_fd)
    if warm_workers is not None:
        warm_workers[key] = worker
        return worker.invoke(event), ignored
    with worker:
        return worker.invoke(event), ignored


class _LogTee:
    """A pipe for a worker's logs: each line goes on to our stderr as it comes, and is kept."""

    def __init__(self) -> None:
        read_fd, self.fd = os.pipe()
        self.lines: list[str] = []
        self._reader = os.fdopen(read_fd, "rb")
        self._thread = threading.Thread(target=self._pump, name="invoke-log", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for raw in self._reader:
            self.lines.append(raw.decode("utf-8", errors="replace"))
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(self.lines[-1])
                sys.stderr.flush()

    def close(self) -> None:
        """After the worker stopped: the last lines read, the pipe closed."""
        os.close(self.fd)
        self._thread.join(timeout=10)
        self._reader.close()


def _event_for(args: argparse.Namespace) -> tuple[Any, str | None]:
    """The event to send, and without -e a note saying which sample it is."""
    if args.event is not None:
        return read_json_file(args.event, "-e"), None
    try:
        document = load_template(args.template).document
    except TemplateError:
        return {}, None
    sample = default_event(document, args.function)
    if sample is None:
        return {}, f"no -e: {args.function} gets {{}} (no sample event in events/ fits it)"
    shown = sample.relative_to(REPO_ROOT) if sample.is_relative_to(REPO_ROOT) else sample
    return read_json_file(
        sample, "-e"
    ), f"no -e: {shown}, {args.function}'s sample event (-e FILE for another)"


@contextlib.contextmanager
def _target_stack(args: argparse.Namespace, env_vars: Mapping[str, Any] | None) -> Iterator[LocalStack]:
    """The stack to invoke against: `up`'s, or a throw-away one with --ephemeral."""
    if not args.ephemeral:
        try:
            yield LocalStack.load(args.stack_file)
        except LocalStackNotRunning as error:
            raise LocalStackNotRunning(f"{error} (or pass --ephemeral for a throw-away stack)") from None
        return
    with LocalEnvironment(
        template_path=args.template,
        parameters=_parameters(args.parameter_overrides),
        log_dir=None,
        env_vars=env_vars,
        with_api=False,
        # As `up` does: the sample catalog where the sync reads it, and the order items events/ names,
        # so a sample event ends in what it is for (an accepted item, not a 404).
        catalog=SAMPLE_CATALOG,
        seed_orders=True,
    ).start(warm=False) as env:
        assert env.stack is not None
        yield env.stack


def run_invoke(args: argparse.Namespace) -> int:
    event, note = _event_for(args)
    env_vars = _read_env_vars(args.env_vars)
    with _target_stack(args, env_vars) as stack:
        if note is not None:
            print(note, file=sys.stderr, flush=True)
        tee = _LogTee()
        try:
            outcome, ignored = local_invoke(
                args.function,
                event,
                stack=stack,
                template_path=args.template,
                env_vars=env_vars,
                log_fd=tee.fd,
            )
        finally:
            tee.close()
    warn_ignored(args.function, ignored, str(args.env_vars))
    print(outcome.to_json(), flush=True)
    if not outcome.ok:
        error = outcome.error or {}
        print(
            f"error: {args.function} raised {error.get('errorType')}: {error.get('errorMessage')}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    outcomes = record_outcomes(tee.lines)
    print(invoke_summary(args.function, event, outcome.result, outcomes), file=sys.stderr)
    problem = unsuccessful(outcome.result, outcomes)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def unsuccessful_result(result: Any) -> str | None:
    """Why a handler's answer is not a success, from the answer alone (see `outcomes.unsuccessful`)."""
    return unsuccessful(result, [])


# ---------------------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------------------
def _chosen_ports(args: argparse.Namespace) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """Each server's port (before anything starts), the ports asked for, and notes for the banner."""
    chosen: dict[str, int] = {}
    explicit: dict[str, int] = {}
    notes: list[str] = []
    for name, port in LOCAL_PORTS.items():
        asked = getattr(args, port.flag.removeprefix("--").replace("-", "_"))
        if asked is not None:
            explicit[name] = asked
        chosen[name] = choose_port(
            port.usual if asked is None else asked, explicit=asked is not None, port=port
        )
        if asked is None and chosen[name] == 0:
            notes.append(f"port {port.usual} was taken: {port.what} is on another free port")
    return chosen, explicit, notes


def _other_arguments(argv: list[str]) -> list[str]:
    """`up`'s arguments besides the ports and the stack file (what `make local` cannot pass)."""
    skip = {port.flag for port in LOCAL_PORTS.values()} | {"--stack-file"}
    rest: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "up":
            continue
        if word in skip:
            next(words, None)
        elif word.split("=", 1)[0] not in skip:
            rest.append(word)
    return rest


def environment_from_args(
    args: argparse.Namespace, ports: Mapping[str, int] | None = None
) -> LocalEnvironment:
    """The `LocalEnvironment` that `up` starts for these arguments (not started)."""
    if ports is None:  # as given (any free port where none is)
        ports = {
            name: getattr(args, p.flag.removeprefix("--").replace("-", "_")) or 0
            for name, p in LOCAL_PORTS.items()
        }
    return LocalEnvironment(
        template_path=args.template,
        parameters=_parameters(args.parameter_overrides),
        time_scale=args.time_scale,
        moto_port=ports["aws"],
        api_port=ports["api"],
        fake_port=ports["offergrid"],
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


def _tool(module: str, arguments: str, stack_file: Path) -> str:
    """How to run a tool against this stack: `make replay ARGS=...` on the usual stack file."""
    if stack_file.resolve() == DEFAULT_STACK_FILE.resolve():
        if module == "devtools.replay":
            return f'make replay ARGS="{arguments}"'
        return f".venv/bin/python -m {module} {arguments}"
    return f".venv/bin/python -m {module} {arguments} --stack-file {stack_file}"


def hints(env: LocalEnvironment, template_path: Path) -> list[str]:
    """The banner's commands, each with this stack's ports and stack file."""
    assert env.stack is not None
    assert env.stack_file is not None
    lines = [
        "",
        'This stack\'s settings for a shell (the aws CLI, boto3, the offer-sync CLI; README "Setup"):',
        stack_exports(env.stack).rstrip("\n"),
        "",
    ]
    env_vars = env_vars_json(render_env_vars(env.stack, template_path))
    committed = COMMITTED_ENV_VARS.read_text(encoding="utf-8") if COMMITTED_ENV_VARS.exists() else ""
    env_vars_command = _tool("devtools.local", "env-vars", env.stack_file)
    if env_vars == committed:
        lines.append(f"{env_vars_command}  # sam's --env-vars file (= events/env.json)")
    else:
        lines.append(
            f"{env_vars_command} > .local/env.json  # sam's --env-vars file for these ports "
            "(events/env.json is for moto on 5000 and the fake on 8900)"
        )
    if env.seeded_items:
        replay = _tool("devtools.replay", "webhook events/webhook_order_created.json", env.stack_file)
        lines.append(f"{replay}  # another terminal: a decision")
    return lines


def run_up(args: argparse.Namespace, argv: list[str]) -> int:
    ports, explicit, notes = _chosen_ports(args)  # a busy port asked for stops here, before any start
    env = environment_from_args(args, ports)
    env.start_command = start_command(explicit, stack_file=args.stack_file, extra=_other_arguments(argv))
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
        print(f"\nlocal stack up ({env.timings['start']:.1f} s); its ports and names in {args.stack_file}:")
        print("\n".join(summary(env, failures) + [f"  note: {note}" for note in notes]))
        print("\n".join(hints(env, args.template)))
        print("Ctrl-C to stop.", flush=True)
        env.serve_forever(stop)
    print("stopped.")
    return EXIT_OK


def run_env_vars(args: argparse.Namespace) -> int:
    stack = LocalStack.load(args.stack_file)
    sys.stdout.write(env_vars_json(render_env_vars(stack, args.template)))
    return EXIT_OK


def run_exports(args: argparse.Namespace) -> int:
    sys.stdout.write(stack_exports(LocalStack.load(args.stack_file)))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        if args.command == "invoke":
            return run_invoke(args)
        if args.command == "env-vars":
            return run_env_vars(args)
        if args.command == "exports":
            return run_exports(args)
        return run_up(args, argv)
    except BrokenPipeError:
        raise
    except (TemplateError, FileError, LocalStackNotRunning, PortInUse) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOT_RUN
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOT_RUN


if __name__ == "__main__":
    sys.exit(quiet_on_closed_pipe(main))
