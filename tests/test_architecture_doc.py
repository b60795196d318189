"""docs/architecture.md stays true: every file it names exists, and every function or class
its table names is defined in the file on the same row."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
TEXT = DOC.read_text()

# A file of the repository in backticks: `apps/delivery/services.py`, `templates/email/x.txt`.
PATH = re.compile(r"`((?:apps|config|templates|docs|tests)/[^`<>*]+)`")
# A name in the table's last column: `event_accept()`, `_Batch.send()`, `MessageBuilder`.
NAME = re.compile(r"`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)(?:\(\))?`")


def table_rows() -> list[tuple[str, str]]:
    """(file, names column) of each row of the event's path that names a Python file."""
    rows = []
    for line in TEXT.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        found = PATH.fullmatch(cells[1]) if len(cells) == 3 else None
        if found and found.group(1).endswith(".py"):
            rows.append((found.group(1), cells[2]))
    return rows


def defines(path: str, name: str) -> bool:
    source = (ROOT / path).read_text()
    return all(
        re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(part)}\b", source, re.M)
        for part in name.split(".")
    )


def test_every_named_file_exists():
    named = set(PATH.findall(TEXT))
    assert len(named) > 20
    missing = sorted(p for p in named if not (ROOT / p.rstrip("/")).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


@pytest.mark.parametrize(("path", "names"), table_rows())
def test_every_named_function_is_in_its_file(path, names):
    checked = NAME.findall(names)
    missing = [n for n in checked if not defines(path, n)]
    assert not missing, f"{path} does not define {missing}"


def test_the_table_covers_the_path_of_an_event():
    files = {path for path, _ in table_rows()}
    for step in (
        "apps/api/views.py",
        "apps/delivery/intake.py",
        "apps/delivery/resolution.py",
        "apps/delivery/tasks.py",
        "apps/delivery/services.py",
        "apps/delivery/sending.py",
        "apps/connections/smtp.py",
        "apps/connections/providers.py",
        "apps/delivery/selectors.py",
        "apps/delivery/views.py",
    ):
        assert step in files
