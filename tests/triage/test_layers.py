"""The three layers, read from the code's own imports: the core imports no part and no assembly, a part
imports no assembly and reaches another part only through that part's package (its `__init__`), and
nothing imports the assembly."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = "triage"
PARTS = ("collector", "correlator", "alerts", "dashboards", "simulator")
ASSEMBLY = "app"


def imports(package: str) -> list[tuple[str, str]]:
    """(module file, imported module) for every absolute import in the package's modules."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [(str(path.relative_to(ROOT)), name) for name in names]
    return found


def top(module: str) -> str:
    return module.split(".")[0]


def test_the_core_imports_no_part_and_no_assembly() -> None:
    wrong = [(f, m) for f, m in imports(CORE) if top(m) in (*PARTS, ASSEMBLY)]
    assert wrong == [], f"the core must stand alone: {wrong}"


def test_parts_import_no_assembly_and_each_other_only_through_the_package() -> None:
    wrong = []
    for part in PARTS:
        for file, module in imports(part):
            if top(module) == ASSEMBLY:
                wrong.append((file, module))
            elif top(module) in PARTS and top(module) != part and module != top(module):
                wrong.append((file, module))
    assert wrong == [], f"a part reaches another part's internals or the assembly: {wrong}"


def test_nothing_imports_the_assembly() -> None:
    wrong = [(f, m) for pkg in (CORE, *PARTS) for f, m in imports(pkg) if top(m) == ASSEMBLY]
    assert wrong == []


def test_the_vocabulary_is_spelled_once() -> None:
    """No module but triage/vocabulary.py lists the stuck states as literals (Python or SQL)."""
    spelled = []
    for package in (CORE, ASSEMBLY, *PARTS):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text("utf-8")
            if path.name != "vocabulary.py" and any(
                literal in text for literal in ("'stalled', 'blocked', 'failed'", '"stalled", "blocked", "failed"')
            ):
                spelled.append(str(path.relative_to(ROOT)))
    assert spelled == [], f"import STUCK from triage.vocabulary instead: {spelled}"
