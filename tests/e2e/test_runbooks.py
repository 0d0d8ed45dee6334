"""The runbooks (docs/runbooks) against the code: the commands that can run locally are run.

Blocks tagged `sh local <name>` are executed against a local stack (moto + the Offergrid fake + the
real handlers) through the tools' `main()`; every such block must have a check here. The other
blocks (deployed-stack commands) are checked statically: the outputs they read exist in
template.yaml, the project's CLIs accept their arguments, the retained resources and the alarms they
list are the template's.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools import offer_sync_cli, replay, smoke
from devtools.local.__main__ import build_parser as local_parser
from devtools.local.stack import DEFAULT_TEMPLATE, LOCAL_WEBHOOK_SECRET, SAMPLE_CATALOG, LocalEnvironment
from devtools.local.template import Template, load_template
from tests.e2e.runbook_blocks import (
    REPO,
    RUNBOOKS,
    Block,
    LocalRunner,
    Result,
    blocks,
    command_words,
    local_blocks,
    outputs_used,
    split_python_module,
)
from tests.fixtures.local_stack import empty_queues
from tests.fixtures.queues import receive_all

RUNBOOK_FILES = sorted(RUNBOOKS.glob("*.md"))
PARSERS: dict[str, Callable[[], Any]] = {
    "devtools.replay": replay.build_parser,
    "devtools.offer_sync_cli": offer_sync_cli.build_parser,
    "devtools.local": local_parser,
    "devtools.smoke": smoke.build_parser,
}


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(DEFAULT_TEMPLATE)


# ---------------------------------------------------------------------------------------------------
# Static checks: every runbook linked, outputs real, CLI arguments accepted, lists = the template's
# ---------------------------------------------------------------------------------------------------
def test_the_runbooks_exist_and_are_linked_from_both_readmes():
    names = {path.name for path in RUNBOOK_FILES} - {"README.md"}
    assert {
        "first-deploy.md",
        "rotate-secrets.md",
        "dlq.md",
        "pause-order-processing.md",
        "offer-sync.md",
        "remove-stack.md",
    } <= names
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    index = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert f"docs/runbooks/{name}" in readme, f"README.md does not link docs/runbooks/{name}"
        assert f"]({name}" in index, f"docs/runbooks/README.md does not link {name}"


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors (lower case, punctuation dropped, spaces to hyphens) and explicit
    `<a id="...">` ones (docs/decisions.md#N)."""
    text = path.read_text(encoding="utf-8")
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    explicit = set(re.findall(r'<a id="([^"]+)"></a>', text))
    return explicit | {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_anchor_linked_from_the_docs_exists():
    docs = [*RUNBOOK_FILES, REPO / "README.md", REPO / "docs" / "local.md", REPO / "events" / "README.md"]
    checked = 0
    for path in docs:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", path.read_text(encoding="utf-8")):
            linked = (path.parent / target) if target else path
            if "://" in target or linked.suffix != ".md":
                continue
            assert anchor in _anchors(linked), f"{path.relative_to(REPO)}: no #{anchor} in {linked.name}"
            checked += 1
    assert checked >= 10


def test_relative_links_between_docs_resolve():
    for path in [
        *RUNBOOK_FILES,
        REPO / "README.md",
        REPO / "docs" / "local.md",
        REPO / "events" / "README.md",
    ]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.relative_to(REPO)} links to a missing {target}"


def test_every_output_a_runbook_reads_is_a_template_output(template: Template):
    outputs = set(template.outputs)
    used = {name: block.path.name for block in blocks() for name in outputs_used(block)}
    assert len(used) > 10, "the runbooks read hardly any output: is outputs_used still matching?"
    missing = {name: where for name, where in used.items() if name not in outputs}
    assert missing == {}, "runbooks read outputs template.yaml does not have"


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(command, id=f"{block.path.stem}:{command[:60]}")
        for block in blocks()
        if block.language == "sh"
        for command in block.commands()
        if split_python_module(command_words(command)) is not None
    ],
)
def test_project_cli_arguments_in_runbooks_are_accepted(command: str):
    # Placeholders and outputs replaced by dummies: this checks the flags and sub-commands only.
    text = re.sub(r"\$\(out \w+\)|<[^>]+>|\$\w+|\$\{\w+\}", "X", command)
    module = split_python_module(command_words(text))
    assert module is not None
    name, args = module
    assert name in PARSERS, f"{command!r}: unknown tool {name}"
    try:
        PARSERS[name]().parse_args(args)
    except SystemExit as exited:
        pytest.fail(f"{command!r} is refused by {name} (exit {exited.code})")


def test_the_retained_resources_listed_are_the_templates(template: Template):
    retained = {lid for lid, res in template.resources.items() if res.get("DeletionPolicy") == "Retain"}
    text = (RUNBOOKS / "remove-stack.md").read_text(encoding="utf-8")
    section = text.split("## What stays behind", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
    assert listed == retained


def test_every_alarm_of_the_template_has_a_runbook_row(template: Template):
    alarms = {lid for lid, res in template.resources.items() if res.get("Type") == "AWS::CloudWatch::Alarm"}
    assert alarms, "template.yaml has no alarm"
    table = (RUNBOOKS / "README.md").read_text(encoding="utf-8").split("## Alarm", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    for alarm in alarms:
        row = next((r for r in rows if f"(`{alarm}`)" in r), None)
        assert row is not None, f"no row for {alarm} in docs/runbooks/README.md"
        assert re.search(r"\]\([\w-]+\.md|README", row), f"the row of {alarm} points to no runbook"


def test_every_local_block_has_a_check_and_runs_only_supported_commands():
    found = local_blocks()
    assert set(found) == set(CHECKS), "a `sh local` block without a check here (or a check without its block)"
    for block in found.values():
        for command in block.commands():
            argv = shlex.split(re.sub(r"<[^>]+>|\$\(out \w+\)", "X", command), comments=True)
            assert argv[0] == "export" or split_python_module(argv) is not None, command


# ---------------------------------------------------------------------------------------------------
# The `sh local` blocks, run against a local stack
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    stack_file = tmp_path_factory.mktemp("runbooks") / "stack.json"
    # Given the stack as `make local` starts it: the sample catalog where the sync reads it
    env = LocalEnvironment(log_dir=None, stack_file=stack_file, retry_delay=0.0, catalog=SAMPLE_CATALOG)
    with env.start(warm=False):
        assert env.uploaded_catalogs, "the sample catalog was not uploaded"
        yield env


@pytest.fixture
def runner(local: LocalEnvironment, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRunner]:
    assert local.stack is not None
    assert local.stack_file is not None
    monkeypatch.chdir(REPO)
    urls = {
        "aws": local.stack.urls["aws"],
        "offergrid": local.stack.urls["offergrid"],
        "api": local.stack.urls["api"],
    }
    runner = LocalRunner(
        stack_file=local.stack_file, outputs=local.stack.outputs, urls=urls, setenv=monkeypatch.setenv
    )
    runner.apply_setup_block()  # the runbooks' local commands run after it, as they say
    yield runner
    empty_queues(local)


def _messages(local: LocalEnvironment, output: str) -> list[dict[str, Any]]:
    assert local.stack is not None
    return receive_all(local.stack.client("sqs"), local.stack.outputs[output], keep=True)


def _dead_letter(local: LocalEnvironment, output: str, *keys: str) -> list[str]:
    assert local.stack is not None
    sqs = local.stack.client("sqs")
    return [
        sqs.send_message(
            QueueUrl=local.stack.outputs[output],
            MessageBody=json.dumps({"dedupKey": key}),
            MessageAttributes={"dedupKey": {"DataType": "String", "StringValue": key}},
        )["MessageId"]
        for key in keys
    ]


def _writes(local: LocalEnvironment) -> int:
    assert local.fake is not None
    return sum(len(local.fake.calls_matching(method)) for method in ("POST", "PATCH", "DELETE"))


def _run_block(runner: LocalRunner, name: str, **placeholders: str) -> list[Result]:
    block: Block = local_blocks()[name]
    results = [runner.run(command, placeholders) for command in block.commands()]
    for result in results:
        assert result.code == 0, f"{result.command}\n{result.out}\n{result.err}"
    return [r for r in results if not r.command.startswith("export ")]


def check_webhook_replay(local: LocalEnvironment, runner: LocalRunner) -> None:
    # When the stored webhook is replayed, signed fresh with the stack's secret
    (result,) = _run_block(runner, "webhook-replay")
    # Then API Gateway + the ingress accept it and it is on the orders queue with its dedup key
    assert re.search(r"webhook_order_created.json -> 2\d\d ", result.out), result.out
    keys = [m["MessageAttributes"]["dedupKey"]["StringValue"] for m in _messages(local, "OrdersQueueUrl")]
    assert keys == ["order.created:item-456-def"]


def check_dlq_inspect(local: LocalEnvironment, runner: LocalRunner) -> None:
    (message_id,) = _dead_letter(local, "OrdersDeadLetterQueueUrl", "order.created:item-dlq-1")
    listed, shown = _run_block(runner, "dlq-inspect", messageId=message_id)
    assert message_id in listed.out
    assert "dedupKey=order.created:item-dlq-1" in listed.out
    assert "1 message(s)" in listed.out
    assert json.loads(shown.out)["body"] == {"dedupKey": "order.created:item-dlq-1"}
    # looking leaves the message where it was
    assert [m["MessageId"] for m in _messages(local, "OrdersDeadLetterQueueUrl")] == [message_id]


def check_dlq_redrive(local: LocalEnvironment, runner: LocalRunner) -> None:
    first, second = _dead_letter(
        local, "OrdersDeadLetterQueueUrl", "order.created:item-a", "order.created:item-b"
    )
    block = local_blocks()["dlq-redrive"]
    one, everything = block.commands()
    # one message back to the orders queue, with its attributes; the other stays
    assert runner.run(one, {"messageId": first}).code == 0
    moved = _messages(local, "OrdersQueueUrl")
    assert [m["MessageAttributes"]["dedupKey"]["StringValue"] for m in moved] == ["order.created:item-a"]
    assert [m["MessageId"] for m in _messages(local, "OrdersDeadLetterQueueUrl")] == [second]
    # then the rest
    result = runner.run(everything)
    assert result.code == 0, result.out
    assert "redrove 1 message(s)" in result.out
    assert _messages(local, "OrdersDeadLetterQueueUrl") == []
    keys = sorted(
        m["MessageAttributes"]["dedupKey"]["StringValue"] for m in _messages(local, "OrdersQueueUrl")
    )
    assert keys == ["order.created:item-a", "order.created:item-b"]


def check_offer_sync_dlq(local: LocalEnvironment, runner: LocalRunner) -> None:
    (message_id,) = _dead_letter(local, "OfferSyncDeadLetterQueueUrl", "scheduled-input")
    _dead_letter(local, "OrdersDeadLetterQueueUrl", "order.created:not-this-one")
    (result,) = _run_block(runner, "offer-sync-dlq")
    assert message_id in result.out
    assert "not-this-one" not in result.out
    assert "1 message(s)" in result.out


def check_sync_dry_run(local: LocalEnvironment, runner: LocalRunner) -> None:
    before = _writes(local)
    whole, one_sku, invoked = _run_block(runner, "sync-dry-run")
    assert whole.out.startswith("Plan (dry run): would create"), whole.out
    assert "1 selected by --sku (1 SKU asked)" in one_sku.out.splitlines()[0]
    assert one_sku.out.splitlines()[1:] == ["    create     NET-FIBER-300"]
    report = json.loads(invoked.out)
    assert report["dryRun"] is True
    assert report["sync"]["status"] == "dry_run"
    assert "sweep" in report
    # Then nothing was written to Offergrid and nothing queued
    assert _writes(local) == before
    assert _messages(local, "OrdersQueueUrl") == []


def check_sync_cli_plan(local: LocalEnvironment, runner: LocalRunner) -> None:
    before = _writes(local)
    (plan,) = _run_block(runner, "sync-cli-plan")
    assert plan.out.startswith("Plan (dry run)"), plan.out
    catalog = json.loads((REPO / "samples" / "catalog.json").read_text())
    assert f"{len(catalog)} catalog rows read, {len(catalog)} valid" in plan.out
    assert _writes(local) == before


def check_sync_skus(local: LocalEnvironment, runner: LocalRunner) -> None:
    assert local.fake is not None
    (result,) = _run_block(runner, "sync-skus")
    assert result.out.startswith("Sync complete: created 1;"), result.out
    skus = [offer.get("sku") for offer in local.fake.offers.values()]
    assert "NET-FIBER-300" in skus
    assert len(skus) == 1, "a sync of one SKU wrote other offers"


def check_reconcile_dry_run(local: LocalEnvironment, runner: LocalRunner) -> None:
    # Given an item accepted by hand in the Offergrid dashboard (no work order on our side)
    assert local.fake is not None
    local.fake.add_order_item(id="item-runbook-by-hand", status="accepted")
    before = _writes(local)
    (result,) = _run_block(runner, "reconcile-dry-run")
    # Then the difference is printed with the repair it would queue, and nothing was done
    assert "missing_work_order: item item-runbook-by-hand is accepted at Offergrid" in result.out
    assert "would queue reconcile.open_work_order" in result.out
    assert _writes(local) == before
    assert _messages(local, "OrdersQueueUrl") == []


def check_pipeline_hook(local: LocalEnvironment, runner: LocalRunner) -> None:
    # When the pre-traffic hook is invoked by hand against the local stack
    (result,) = _run_block(runner, "pipeline-hook")
    # Then both new-version checks pass (the hook's answer), and nothing was written to Offergrid
    answer = json.loads(result.out)
    assert answer["status"] == "Succeeded"
    assert [check["check"] for check in answer["checks"] if check["ok"]] == [
        "webhook-ingress",
        "order-processor",
    ]
    assert answer["deploymentId"] is None  # by hand: reported to no deployment


def check_first_deploy_smoke(local: LocalEnvironment, runner: LocalRunner) -> None:
    # Given the local stack's order processor consuming its queue, as `make local` runs it
    local.start_pollers()
    try:
        smoke_run, hook = _run_block(runner, "first-deploy-smoke")
    finally:
        for source in local.sources:
            source.stop()
    # Then every check passed, the draft offer included, and the hook too
    assert re.search(r": 8 ok, 0 failed$", smoke_run.out.strip()), smoke_run.out
    assert json.loads(hook.out)["status"] == "Succeeded"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _deliver(local: LocalEnvironment, item_id: str) -> None:
    assert local.fake is not None
    payload = local.fake.webhook_payload("order.created", item_id)
    status, _ = local.fake.deliver_webhook(
        local.api_url("WebhookIngressFunction"), payload, LOCAL_WEBHOOK_SECRET
    )
    assert status == 200


def check_archive_replay_window(local: LocalEnvironment, runner: LocalRunner) -> None:
    # Given a window in which an order was delivered twice and its messages were lost (a bad release)
    assert local.fake is not None
    start = datetime.now(UTC) - timedelta(seconds=1)
    item = local.fake.add_order_item(status="pending")["id"]
    _deliver(local, item)
    _deliver(local, item)
    empty_queues(local)
    end = datetime.now(UTC)
    # When the window is dry-run, then replayed
    dry, replayed = _run_block(runner, "archive-replay-window", **{"from": _iso(start), "to": _iso(end)})
    # Then the dry run says it would queue the order once and queues nothing; the replay queues it once
    assert "1 would queue, 1 duplicate(s) in the window" in dry.out.splitlines()[-1], dry.out
    assert "1 queued, 1 duplicate(s) in the window" in replayed.out.splitlines()[-1], replayed.out
    keys = [m["MessageAttributes"]["dedupKey"]["StringValue"] for m in _messages(local, "OrdersQueueUrl")]
    assert keys == [f"order.created:{item}"]


def check_item_trace(local: LocalEnvironment, runner: LocalRunner) -> None:
    # Given an order decided through the webhook
    assert local.fake is not None
    item = local.fake.add_order_item(status="pending")["id"]
    _deliver(local, item)
    local.drain(timeout=60)
    # When its story is asked for
    (result,) = _run_block(runner, "item-trace", itemId=item)
    # Then the delivery, the decision, what the processor remembers and Offergrid's view are in it
    lines = result.out.splitlines()
    assert lines[0] == f"== the story of item {item} (the local stack)"
    assert any("order.created delivered by Offergrid" in line for line in lines)
    assert any(line.startswith("decision: ") for line in lines)
    assert any(line.startswith(f"queue message order.created:{item}: completed") for line in lines)
    assert lines[-1].startswith(f"item {item}: ")
    assert f'filter itemId = "{item}"' in result.out


CHECKS: dict[str, Callable[[LocalEnvironment, LocalRunner], None]] = {
    "archive-replay-window": check_archive_replay_window,
    "item-trace": check_item_trace,
    "pipeline-hook": check_pipeline_hook,
    "webhook-replay": check_webhook_replay,
    "dlq-inspect": check_dlq_inspect,
    "dlq-redrive": check_dlq_redrive,
    "offer-sync-dlq": check_offer_sync_dlq,
    "sync-dry-run": check_sync_dry_run,
    "sync-cli-plan": check_sync_cli_plan,
    "reconcile-dry-run": check_reconcile_dry_run,
    "sync-skus": check_sync_skus,  # it writes an offer to the fake
    "first-deploy-smoke": check_first_deploy_smoke,  # last: it runs the order processor's poller
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHECKS))
def test_local_runbook_block(name: str, local: LocalEnvironment, runner: LocalRunner):
    CHECKS[name](local, runner)


def test_runbook_paths_used_by_the_blocks_exist():
    for block in local_blocks().values():
        for path in re.findall(r"\b(?:events|samples)/[\w./-]+\.json\b", block.body):
            assert (REPO / path).exists(), f"{block.path.name}: {path} does not exist"
