"""Imports run one way: models ← matching/access ← selectors ← services ← entry points.

Walks every module of registry/ with `ast` (imports inside functions count too) and names each
import that runs against the direction. Tasks are entry points that import their service inside
the task's body, which breaks the services ↔ tasks circle without lazy imports anywhere else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "registry"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno, id(node) in top_level))
            # `from registry import services` names a package through its attribute.
            found += [(f"{node.module}.{alias.name}", node.lineno, id(node) in top_level) for alias in node.names]
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# (rule, does it apply to the importing module, is the imported module forbidden there)
RULES = [
    ("a selector imports a service", lambda m: within(m, "registry.selectors"),
     lambda i: within(i, "registry.services")),
    ("a service imports the API or the portal", lambda m: within(m, "registry.services"),
     lambda i: within(i, "registry.api") or within(i, "portal")),
    ("registry imports portal", lambda m: within(m, "registry"), lambda i: within(i, "portal")),
    ("matching imports models, selectors or services", lambda m: within(m, "registry.matching"),
     lambda i: any(within(i, p) for p in ("registry.models", "registry.selectors", "registry.services"))),
    ("models import selectors or services", lambda m: within(m, "registry.models"),
     lambda i: within(i, "registry.selectors") or within(i, "registry.services")),
    ("access imports selectors or services", lambda m: m == "registry.access",
     lambda i: within(i, "registry.selectors") or within(i, "registry.services")),
]


def violations() -> list[str]:
    found = []
    for path in sorted(REGISTRY.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        module = module_name(path)
        for imported, line, top_level in imports_of(path):
            for rule, applies, forbidden in RULES:
                if applies(module) and forbidden(imported):
                    found.append(f"{path.relative_to(ROOT)}:{line}: {rule} ({imported})")
            if module == "registry.tasks" and top_level and within(imported, "registry.services"):
                found.append(f"{path.relative_to(ROOT)}:{line}: a task module imports a service at its top "
                             f"({imported}); import it inside the task's body")
    return sorted(set(found))


def test_imports_run_one_way():
    assert violations() == []


@pytest.mark.parametrize("source,module,expected", [
    ("from registry.services.works import work_register\n", "registry/selectors/x.py", "a selector imports"),
    ("def f():\n    from registry.services import works\n", "registry/selectors/x.py", "a selector imports"),
    ("import portal.views\n", "registry/x.py", "registry imports portal"),
    ("from registry.models import Work\n", "registry/matching/x.py", "matching imports"),
    ("from registry.services.audit import audit_append\n", "registry/tasks.py", "a task module imports"),
])
def test_the_walk_catches_each_kind_of_wrong_import(tmp_path, monkeypatch, source, module, expected):
    fake = tmp_path / module
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(source)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    monkeypatch.setitem(globals(), "REGISTRY", tmp_path / "registry")
    assert any(expected in line for line in violations())
