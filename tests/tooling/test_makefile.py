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
        assert "pip install" in recipe
        assert recipe.count("scripts/timed-step") == 2, recipe  # the venv, then pip
        assert re.search(r"timed-step \"installing .*\(pip; about a minute the first time\)\"", recipe)


def test_replay_and_invoke_do_not_echo_their_command():
    for target in ("replay", "invoke"):
        recipe = _recipe(target)
        assert all(line.startswith("\t@") for line in recipe.splitlines()), recipe
