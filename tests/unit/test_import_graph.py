"""The core boundary, pinned on the import graph (read from the source, nothing imported):

* no feature imports the server: features get everything through ``install(core, app)``; only the
  command line (the composition root) may start the server;
* no private name (leading underscore) is imported across packages: what another package needs is
  public API of its owner, so it can change inside its package without breaking a stranger.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "exporter" / "marketplace_exporter"
ROOT = "marketplace_exporter"
SERVER = f"{ROOT}.server"
#: modules allowed to import the server: the command line that runs it
COMPOSITION_ROOTS = {f"{ROOT}.cli"}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return found


def _package_of(module: str, modules: dict[str, ast.Module]) -> str:
    """The package a module belongs to (a package's ``__init__`` belongs to the package itself)."""
    path = PACKAGE.parent.joinpath(*module.split("."))
    return module if path.is_dir() else module.rpartition(".")[0]


def _imports(tree: ast.Module) -> list[tuple[str, str | None, int]]:
    """(module, imported name or None, line) for every import, including those inside functions."""
    found: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
    return found


def server_imports(modules: dict[str, ast.Module]) -> list[str]:
    bad = []
    for name, tree in modules.items():
        if name == SERVER or name.startswith(SERVER + ".") or name in COMPOSITION_ROOTS:
            continue
        for module, imported, line in _imports(tree):
            target = f"{module}.{imported}" if imported else module
            if target == SERVER or target.startswith(SERVER + ".") or module.startswith(SERVER):
                bad.append(f"{name}:{line} imports {target}")
    return bad


def private_imports(modules: dict[str, ast.Module]) -> list[str]:
    bad = []
    for name, tree in modules.items():
        home = _package_of(name, modules)
        for module, imported, line in _imports(tree):
            if not module.startswith(ROOT) or imported is None:
                continue
            if imported.startswith("_") and not imported.startswith("__"):
                owner = _package_of(module, modules) if module in modules else module.rpartition(".")[0]
                if owner != home:
                    bad.append(f"{name}:{line} imports {module}.{imported} (private to {owner})")
    return bad


def test_no_feature_imports_the_server() -> None:
    assert server_imports(_modules()) == []


def test_no_private_name_crosses_a_package() -> None:
    assert private_imports(_modules()) == []


def test_the_checks_do_see_a_violation() -> None:
    """Not vacuous: a feature importing the server and a private name from another package fail."""
    modules = _modules()
    modules[f"{ROOT}.deploys.fake_feature"] = ast.parse(
        "from marketplace_exporter.server.app import CORE\n"
        "from marketplace_exporter.config.load import _entries\n"
        "from marketplace_exporter.deploys.model import _CONTROL\n")  # same package: allowed
    assert server_imports(modules) == [f"{ROOT}.deploys.fake_feature:1 imports {SERVER}.app.CORE"]
    assert private_imports(modules) == [
        f"{ROOT}.deploys.fake_feature:2 imports {ROOT}.config.load._entries (private to {ROOT}.config)"]
    assert len(modules) > 100  # the walk found the package
