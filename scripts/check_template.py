"""Lint template.yaml after translating it to plain CloudFormation, offline.

cfn-lint on the SAM template misses broken references inside AWS::Serverless::* resources; linting
the translated template catches them. Runs in the SAM venv (.venv-sam), which has samtranslator and
cfn-lint. No AWS call: managed policies are resolved from a static map.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devtools.cfn_yaml import load_template


class _OfflinePolicyLoader(ManagedPolicyLoader):
    """Resolves AWS managed policy names without calling IAM."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


def with_packaged_code(template: dict[str, Any]) -> dict[str, Any]:
    """Point local CodeUri/ContentUri at placeholder S3 objects, as `sam package` would."""
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://offline-lint-bucket/{name}.zip"
    return template


def drop_inlined_parameters(source: dict[str, Any], translated: dict[str, Any]) -> list[str]:
    """Parameters SAM inlines while translating: a `DeploymentPreference.Type: !Ref Param` becomes the
    deployment group's config name, resolved from the value CloudFormation passes to the transform (here
    the default). The translated template no longer refers to them, which cfn-lint would call unused."""
    inlined: list[str] = []
    for resource in source.get("Resources", {}).values():
        kind = resource.get("Properties", {}).get("DeploymentPreference", {}).get("Type")
        if isinstance(kind, dict) and isinstance(kind.get("Ref"), str):
            inlined.append(kind["Ref"])
    text = json.dumps({key: value for key, value in translated.items() if key != "Parameters"})
    dropped = sorted({name for name in inlined if f'"Ref": "{name}"' not in text})
    for name in dropped:
        translated.get("Parameters", {}).pop(name, None)
    return dropped


def translate(path: Path, parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The plain CloudFormation SAM makes of `path` for these parameter values (what CloudFormation
    passes the transform; the others at their defaults), offline."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")  # pseudo parameters only, no AWS call
    template = with_packaged_code(load_template(path))
    source = json.loads(json.dumps(template))  # the transform changes its input
    values = {"AWS::Region": "eu-west-1", **(parameters or {})}
    translated: dict[str, Any] = transform(template, values, _OfflinePolicyLoader())
    drop_inlined_parameters(source, translated)
    return translated


def main() -> int:
    if sys.argv[1:2] == ["--translate"]:  # tests: the translation for some parameter values, as JSON
        values = dict(pair.split("=", 1) for pair in sys.argv[3:])
        print(json.dumps(translate(Path(sys.argv[2]), values)))
        return 0
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
    translated = translate(path)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(translated, out, indent=1)
    print(f"translated {path} -> {len(translated.get('Resources', {}))} CloudFormation resources")
    result = subprocess.run(  # noqa: S603 - fixed argv
        # W1020: samtranslator itself resolves ${Environment} in LayerName and leaves a Sub with no variables.
        [str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", "W1020", "--", out.name],
        check=False,
    )
    Path(out.name).unlink()
    if result.returncode != 0:
        print("cfn-lint found problems in the translated template", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
