"""The apps' layers (pyproject.toml's [tool.importlinter]) hold, and the contract would catch
an app that reaches up to a higher one."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["id"] == "layers"]
    return layers


def lint(tmp_path: Path, layers: dict) -> subprocess.CompletedProcess:
    """Run lint-imports on this checkout with one layers contract written to a temp file."""
    # JSON strings are valid TOML strings, and a JSON list of them a valid TOML array.
    lines = [
        "[tool.importlinter]",
        'root_packages = ["apps"]',
        "",
        "[[tool.importlinter.contracts]]",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in layers.items()]
    config = tmp_path / "importlinter.toml"
    config.write_text("\n".join(lines) + "\n")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_committed_contract_holds():
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_lower_app_importing_a_higher_one_breaks_the_contract(tmp_path):
    """Each listed debt is a real lower -> higher import: without its entry the contract fails."""
    layers = contract()
    ignored = layers["ignore_imports"]
    assert ignored, "no listed debt left: use the reversed-layers test alone"
    dropped = next(i for i in ignored if i.startswith("apps.delivery.tasks "))
    layers["ignore_imports"] = [i for i in ignored if i != dropped]
    result = lint(tmp_path, layers)
    assert result.returncode != 0
    assert "apps.delivery is not allowed to import apps.operations" in result.stdout
    assert "apps.delivery.tasks -> apps.operations.selectors" in result.stdout


def test_reversed_layers_break_the_contract(tmp_path):
    layers = contract()
    layers["layers"] = list(reversed(layers["layers"]))
    layers["ignore_imports"] = []
    result = lint(tmp_path, layers)
    assert result.returncode != 0
    assert "is not allowed to import" in result.stdout
