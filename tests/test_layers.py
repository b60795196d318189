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
    dropped = next(i for i in ignored if i.startswith("apps.accounts.views "))
    layers["ignore_imports"] = [i for i in ignored if i != dropped]
    result = lint(tmp_path, layers)
    assert result.returncode != 0
    assert "apps.accounts is not allowed to import apps.tenancy" in result.stdout
    assert "apps.accounts.views -> apps.tenancy.portal" in result.stdout


def test_reversed_layers_break_the_contract(tmp_path):
    layers = contract()
    layers["layers"] = list(reversed(layers["layers"]))
    layers["ignore_imports"] = []
    result = lint(tmp_path, layers)
    assert result.returncode != 0
    assert "is not allowed to import" in result.stdout


def test_delivery_learns_of_operations_through_its_hooks_not_an_import():
    """Maintenance mode and the failure alerts reach the engine as registry entries."""
    from apps.delivery import hooks
    from apps.operations.selectors import maintenance_is_on
    from apps.operations.services import failure_alerts_sweep

    assert maintenance_is_on in hooks._pause_checks
    assert failure_alerts_sweep in hooks._sweep_checks


def test_a_rules_test_reaches_delivery_through_a_registered_function():
    from apps.delivery.services import rule_test_send
    from apps.pipelines import hooks

    assert hooks._rule_testers == [rule_test_send]


def test_groups_learn_that_someone_left_a_tenant_through_a_registered_function():
    from apps.groups.services import user_groups_leave
    from apps.tenancy import hooks

    assert hooks._tenant_left == [user_groups_leave]


def test_the_dashboard_gets_the_higher_apps_parts_through_registered_functions():
    """groups, connections and delivery add to the tenant's dashboard; tenancy imports none."""
    from apps.tenancy import dashboard

    assert {c.__module__ for c in dashboard._contexts} == {
        "apps.groups.apps",
        "apps.connections.apps",
        "apps.delivery.apps",
    }
