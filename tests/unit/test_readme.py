"""README.md against the code: every parameter and environment variable documented, commands real."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from pydantic import BaseModel

from devtools.local.template import Template, load_template
from offergrid_integration.catalog.settings import SyncSettings
from offergrid_integration.config import env_var_names
from offergrid_integration.orders.processor import ProcessorSettings
from offergrid_integration.webhooks.ingress import WebhookIngressSettings
from tests.fixtures.docs import sh_commands

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
CONFIGURATION = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")  # the variables' table
SETTINGS: tuple[type[BaseModel], ...] = (ProcessorSettings, SyncSettings)
OPENING = """# Offergrid provider integration (AWS SAM)

```sh
make demo   # the whole integration running locally: moto + an Offergrid fake, no AWS account, no Docker
make test   # everything CI checks: ruff, mypy, template checks, checkov, sam build, the test suite
```
"""


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(REPO / "template.yaml")


def _table_rows(heading: str, text: str = README) -> dict[str, str]:
    """First-column names (in backticks) of the table under `heading`, with their whole row."""
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        found = re.match(r"^\| `([A-Za-z_][\w]*)` \|", line)
        if found:
            rows[found[1]] = line
    return rows


def test_the_readme_opens_with_the_two_commands():
    assert README.startswith(OPENING)
    assert "fresh machine" in README.split("##", 1)[0]


def test_every_template_parameter_is_in_the_parameter_table(template: Template):
    documented = _table_rows("### Template parameters")
    parameters = set(template.document["Parameters"])
    assert parameters - set(documented) == set(), "parameters missing from the README table"
    assert set(documented) - parameters == set(), "the README documents parameters the template lacks"


def test_every_default_in_the_parameter_table_is_the_templates(template: Template):
    documented = _table_rows("### Template parameters")
    for name, spec in template.document["Parameters"].items():
        default = str(spec.get("Default", ""))
        if default and len(default) < 40:
            assert f"`{default}`" in documented[name], f"{name}: default {default!r} not in its README row"


def _declared_variables(template: Template) -> set[str]:
    """Every variable template.yaml declares (Globals and each function), conditional ones included."""
    globals_ = (template.document.get("Globals") or {}).get("Function") or {}
    declared = set((globals_.get("Environment") or {}).get("Variables") or {})
    for function_id in template.function_ids():
        properties = template.resources[function_id].get("Properties") or {}
        declared |= set((properties.get("Environment") or {}).get("Variables") or {})
    return declared


def test_every_environment_variable_is_in_the_variable_table(template: Template):
    documented = set(_table_rows("## Environment variables", CONFIGURATION))
    read_by_code = {name for model in SETTINGS for name in env_var_names(model)}
    read_by_code.update(WebhookIngressSettings.env_var_names())
    assert read_by_code, "no settings model read?"
    missing = (read_by_code | _declared_variables(template)) - documented
    assert missing == set(), "variables missing from the README table"


def test_variables_marked_not_set_are_really_not_set_by_the_template(template: Template):
    declared = _declared_variables(template)
    for name, row in _table_rows("## Environment variables", CONFIGURATION).items():
        assert ("*not set*" in row) == (name not in declared), f"{name}: the README says otherwise"


def _readme_commands() -> list[str]:
    return sh_commands(README)


def test_every_make_target_in_the_readme_exists():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    used = set(re.findall(r"`make ([a-z][a-z-]*)", README))
    used |= {shlex.split(c)[1] for c in _readme_commands() if c.startswith("make ")}
    assert used, "the README names no make target?"
    assert used - targets == set(), "the README names make targets the Makefile lacks"


def test_every_project_cli_command_in_the_readme_parses():
    from devtools import offer_sync_cli, replay
    from devtools.local.__main__ import build_parser as local_parser

    parsers = {
        "devtools.replay": replay.build_parser,
        "devtools.offer_sync_cli": offer_sync_cli.build_parser,
        "devtools.local": local_parser,
    }
    checked = 0
    for command in _readme_commands():
        words = shlex.split(command.split(" > ", 1)[0], comments=True)
        if words[:2] == ["make", "replay"] and words[2].startswith("ARGS="):  # make replay ARGS="..."
            args = shlex.split(words[2].removeprefix("ARGS="))
            words = [".venv/bin/python", "-m", "devtools.replay", *args]
        if len(words) < 3 or words[1] != "-m" or not words[0].endswith("python"):
            continue
        assert words[2] in parsers, f"{command!r}: unknown module"
        parser = parsers[words[2]]
        if parser is not None:
            parser().parse_args(words[3:])
        checked += 1
    assert checked >= 8


def test_every_file_the_readme_names_exists():
    for path in set(
        re.findall(
            r"\b((?:events|samples|docs|devtools|tests|benchmarks)/[\w./-]+\.(?:json|md|py|csv))", README
        )
    ):
        assert (REPO / path).exists(), path


def test_the_tests_table_names_every_test_folder_and_the_target_that_runs_it():
    section = README.split("### Tests\n", 1)[1].split("\n#", 1)[0]
    rows = dict(re.findall(r"^\| `tests/(\w+)/` \|.*\| `make ([a-z-]+)` \|$", section, flags=re.M))
    folders = {path.parent.name for path in (REPO / "tests").glob("*/test_*.py")}
    assert set(rows) == folders
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for folder, target in rows.items():
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
        assert recipe is not None, target
        assert f"tests/{folder}" in recipe[1], f"`make {target}` does not run tests/{folder}"


# --- the first hour (issue 22): one setup block, the sample events as events/ holds them ----------
def _section(heading: str) -> str:
    return README.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]


def test_the_setup_block_says_what_is_needed_and_what_is_optional():
    setup = _section("### Setup")
    needed, optional = setup.split("**Optional:**", 1)
    assert "Python 3.13" in needed
    assert "`make`" in needed
    assert ".venv-sam" in needed  # the SAM CLI comes with make, not from the user
    for tool in ("AWS CLI v2", "`jq`", "`curl`", "`bash`"):
        assert tool in optional.split("\n\n", 1)[0], tool


def test_one_export_block_holds_the_local_settings_and_it_is_what_make_local_prints():
    from devtools.local.env_vars import shell_exports
    from devtools.local.ports import LOCAL_PORTS
    from devtools.local.stack import LocalEnvironment

    # Every `export AWS_...` of the README is in the setup block (one place, linked from the docs)
    blocks = re.findall(r"^```sh\n(.*?)^```", README, flags=re.M | re.S)
    with_exports = [block for block in blocks if re.search(r"^export AWS_", block, flags=re.M)]
    assert len(with_exports) == 1, "one export block of local settings, in Setup"
    (block,) = with_exports
    assert block in _section("### Setup")
    # It is what `make local` prints on the usual ports (credentials included: moto needs some)
    region = LocalEnvironment().region
    aws, fake = (f"http://127.0.0.1:{LOCAL_PORTS[name].usual}" for name in ("aws", "offergrid"))
    assert block == shell_exports(aws, fake, region)
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert f"{name}=" in block


def test_the_docs_link_the_setup_block_instead_of_their_own_exports():
    for page in ("docs/local.md", "docs/runbooks/README.md", "docs/runbooks/offer-sync.md"):
        text = (REPO / page).read_text(encoding="utf-8")
        assert "README.md#setup" in text, f"{page} does not link the README's setup block"
        assert not re.search(r"^export AWS_ENDPOINT_URL", text, flags=re.M), f"{page} has its own exports"


def test_the_sample_events_table_is_what_events_holds(template: Template):
    from devtools.local.events import events_table, sample_events

    section = _section("## Sample events")
    table = "\n".join(line for line in section.splitlines() if line.startswith("|")) + "\n"
    expected = events_table(template.document)
    assert table == expected, f"the README's table of sample events differs from events/; it is:\n{expected}"
    for path in sample_events():
        assert f"`{path.name}`" in table, f"events/{path.name} is not in the README's table"


def test_events_readme_has_a_row_for_every_sample_event_and_no_other():
    from devtools.local.events import sample_events

    text = (REPO / "events" / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([\w.-]+\.json)` \|", text, flags=re.M))
    assert rows == {path.name for path in sample_events()}
