"""What the Makefile prints and does for a new user (issue 13): every install step says what it is
and how long it took; `make replay` / `make invoke` do not echo themselves (so `| jq` works)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")
TIMED_STEP = REPO / "scripts" / "timed-step"


def _recipe(target_pattern: str) -> str:
    found = re.search(rf"^{target_pattern}:.*\n((?:\t.*\n)+)", MAKEFILE, flags=re.M)
    assert found is not None, target_pattern
    return found[1]


def test_timed_step_says_what_starts_and_how_long_it_took():
    done = subprocess.run(  # noqa: S603 - our script
        [str(TIMED_STEP), "installing things", "sh", "-c", "echo working"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == "==> installing things"
    assert lines[1] == "working"
    assert re.fullmatch(r"    done in \d+\.\d s", lines[2])


def test_timed_step_keeps_the_failure_and_says_so():
    done = subprocess.run(  # noqa: S603 - our script
        [str(TIMED_STEP), "failing", "sh", "-c", "exit 3"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 3
    assert re.search(r"FAILED after \d+\.\d s \(exit 3\)", done.stderr)


def test_every_install_step_goes_through_timed_step():
    for venv in (r"\$\(VENV\)", r"\$\(SAM_VENV\)", r"\$\(CHECKOV_VENV\)"):
        recipe = _recipe(venv + r"/\.installed")
        assert "$(UV_INSTALL) --python" in recipe  # one uv install per venv
        assert recipe.count("scripts/timed-step") == 2, recipe  # the venv, then uv
        assert re.search(r"timed-step \"installing .*\(uv pip install; seconds\)\"", recipe)
    # uv itself: pinned, in its own venv, by pip, timed like the others
    recipe = _recipe(r"\$\(UV_VENV\)/\.installed")
    assert recipe.count("scripts/timed-step") == 2, recipe
    assert "pip install --quiet --disable-pip-version-check -r requirements-uv.txt" in recipe
    assert re.fullmatch(r"uv==[\d.]+", (REPO / "requirements-uv.txt").read_text().splitlines()[-1])


def test_uv_installs_from_the_registry_with_the_systems_certificates():
    # uv reads no pip.conf: without the system's CA store a TLS-inspecting proxy fails every download
    uv_install = re.search(r"^UV_INSTALL := (.*)$", MAKEFILE, flags=re.M)
    assert uv_install is not None
    assert uv_install[1].split() == ["$(UV)", "pip", "install", "--quiet", "--system-certs"]


def test_replay_and_invoke_do_not_echo_their_command():
    for target in ("replay", "invoke"):
        recipe = _recipe(target)
        assert all(line.startswith("\t@") for line in recipe.splitlines()), recipe


def _dry_run(*argv: str) -> str:
    """The commands `make <argv>` would run (`make -n`), as one line each."""
    done = subprocess.run(  # noqa: S603 - make, printing only
        ["make", "-n", "--no-print-directory", *argv],  # noqa: S607 - make from PATH, as a user runs it
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return " ".join(done.stdout.split())


def test_make_local_takes_the_ports_as_variables():
    # issue 22: `make local` always took 3000, 5000 and 8900; the flags existed only on `up`
    assert _dry_run("local").endswith("-m devtools.local up")  # the usual ports when free, else any
    assert _dry_run("local", "PORT=3001", "MOTO_PORT=5001", "FAKE_PORT=0").endswith(
        "-m devtools.local up --port 3001 --moto-port 5001 --fake-port 0"
    )


def test_make_invoke_leaves_the_event_to_the_function_and_takes_ephemeral():
    # issue 22: without EVENT it sent events/webhook_order_created.json to every function
    assert _dry_run("invoke", "FUNCTION=OfferSyncFunction").endswith(
        "-m devtools.local invoke OfferSyncFunction"
    )
    assert _dry_run("invoke", "FUNCTION=OfferSyncFunction", "EPHEMERAL=1").endswith(
        "invoke OfferSyncFunction --ephemeral"
    )
    assert _dry_run("invoke", "EVENT=events/webhook_order_cancelled.json").endswith(
        "invoke WebhookIngressFunction -e events/webhook_order_cancelled.json"
    )


# --- the suite's parts and `make test` (issues 12 and 14) -----------------------------------------
PART_TARGETS = ("test-unit", "test-integration", "test-tooling")
GATES = REPO / "scripts" / "gates"


def _test_folders() -> set[str]:
    return {path.parent.name for path in (REPO / "tests").glob("*/test_*.py")}


def test_every_test_folder_belongs_to_exactly_one_part_target():
    named: list[str] = []
    for target in PART_TARGETS:
        recipe = _recipe(target)
        assert "-m pytest" in recipe, target
        named += re.findall(r"\btests/(\w+)", recipe)
    assert sorted(named) == sorted(set(named)), "a folder in two targets"
    assert set(named) == _test_folders()


def test_make_test_runs_every_gate_beside_the_whole_suite():
    gates = re.search(r"^TEST_GATES := (.*)$", MAKEFILE, flags=re.M)
    assert gates is not None
    assert set(gates[1].split()) == {
        "lint",
        "typecheck",
        "imports",
        "template-check",
        "security-check",
        "pipeline-check",
        "build",
    }
    assert re.search(r"scripts/gates pytest \$\(TEST_GATES\)", _recipe("test"))
    # the foreground pytest is the whole suite (pyproject's testpaths), not one folder
    assert "tests/" not in _recipe("pytest")


def _fake_make(tmp_path: Path) -> str:
    """A `make` that runs nothing: target `bad` fails with 2, any other says it ran."""
    script = tmp_path / "make"
    script.write_text(
        '#!/bin/sh\nshift\nif [ "$1" = bad ]; then echo "bad broke"; exit 2; fi\necho "ran $1"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return str(script)


def _gates(tmp_path: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our script
        [str(GATES), *targets],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "MAKE": _fake_make(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_gates_print_each_background_gate_as_one_block_with_its_time(tmp_path: Path):
    done = _gates(tmp_path, "pytest", "lint", "build")
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"==> pytest\nran pytest\n    done in \d+\.\d s\n"
        r"==> lint \(ran in the background\)\nran lint\n    done in \d+\.\d s\n"
        r"==> build \(ran in the background\)\nran build\n    done in \d+\.\d s\n"
        r"==> make test passed in \d+\.\d s\n$",
        done.stdout,
    ), done.stdout


def test_gates_fail_and_name_every_failed_gate(tmp_path: Path):
    done = _gates(tmp_path, "pytest", "bad", "lint")
    assert done.returncode == 1
    assert "==> bad (ran in the background)\nbad broke\n" in done.stdout
    assert re.search(r"FAILED after \d+\.\d s \(exit 2\)", done.stderr)
    assert re.search(r"make test FAILED after \d+\.\d s: bad$", done.stderr.strip())
    assert "ran lint" in done.stdout  # the others still ran and printed
