"""Local tooling, not deployed: the local stack, the Offergrid fake, replay, the demo, the sync CLI.

Run it with the project's interpreter, `.venv/bin/python -m devtools.<tool>` (`make dev` creates
`.venv`), or through make (`make local`, `make replay ARGS="..."`, `make invoke ...`). Another Python
(the system's, without the dependencies, or older than 3.13) gets one line saying so, not a traceback.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

_NEEDED = ("boto3", "httpx", "pydantic", "aws_lambda_powertools", "moto")


def _check_interpreter() -> None:
    version = "{}.{}".format(*sys.version_info[:2])
    missing = [name for name in _NEEDED if find_spec(name) is None]
    if sys.version_info >= (3, 13) and not missing:
        return
    problem = f"Python {version}" if sys.version_info < (3, 13) else f"no {', '.join(missing)}"
    sys.stderr.write(
        f"error: {sys.executable} is not the project's interpreter ({problem}). Run the tools with "
        ".venv/bin/python -m devtools... (`make dev` creates .venv), or through make: make local, "
        'make replay ARGS="...", make invoke FUNCTION=... EVENT=...\n'
    )
    raise SystemExit(2)


# Only for `python -m devtools.<tool>` (while -m locates the module, sys.argv[0] is "-m"): scripts
# that import a light module of this package under another interpreter (scripts/check_template.py
# under .venv-sam) are not tools a user runs.
if sys.argv[:1] == ["-m"]:
    _check_interpreter()

# The tools import the layer's package (`offergrid_integration`) from the repo, where it is not
# installed: on the path once, for every devtools module.
_LAYER = str(Path(__file__).resolve().parents[1] / "layers" / "shared")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
