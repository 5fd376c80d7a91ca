"""Build hook (hatchling ``custom``): the build metadata and the shipped assets.

1. Writes ``exporter/marketplace_exporter/_buildinfo.py`` (version, revision, branch) for
   ``marketplace_exporter_build_info``. The revision and branch come from, in order:
   ``MARKETPLACE_EXPORTER_REVISION`` / ``MARKETPLACE_EXPORTER_BRANCH`` (the Dockerfile's build args: its
   build context has no ``.git``), git (when the project root is a git work tree's top level: here, once, at
   build time), the ``_buildinfo.py`` an sdist already carries, else ``unknown``.
2. For a wheel (not an editable install, which reads the files in place), copies every file the
   ``assets`` globs of ``[tool.hatch.build.hooks.custom]`` match into ``marketplace_exporter/_assets/``
   with its repository-relative path. The globs are matched by ``marketplace_exporter/assets.py``
   (loaded by path: the package is not importable in the build environment), the same code
   ``marketplace-exporter assets`` runs in a source checkout, so the two cannot disagree.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUILDINFO = Path("exporter", "marketplace_exporter", "_buildinfo.py")
ASSETS_MODULE = Path("exporter", "marketplace_exporter", "assets.py")
WHEEL_ASSETS = "marketplace_exporter/_assets"
UNKNOWN = "unknown"


class BuildInfoAndAssetsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        revision, branch = _revision_and_branch(root)
        _write_buildinfo(root / BUILDINFO, self.metadata.version, revision, branch)
        if self.target_name == "wheel" and version != "editable":
            assets = _load_assets_module(root / ASSETS_MODULE)
            for relative, source in assets.match_assets(root, self.config.get("assets", [])).items():
                build_data["force_include"][str(source)] = f"{WHEEL_ASSETS}/{relative}"


def _revision_and_branch(root: Path) -> tuple[str, str]:
    env_revision = os.environ.get("MARKETPLACE_EXPORTER_REVISION", "").strip()
    env_branch = os.environ.get("MARKETPLACE_EXPORTER_BRANCH", "").strip()
    git = _from_git(root)
    carried = _from_existing(root / BUILDINFO) if git is None else None
    found = git or carried or (UNKNOWN, UNKNOWN)
    return env_revision or found[0], env_branch or found[1]


def _from_git(root: Path) -> tuple[str, str] | None:
    """``git rev-parse`` when ``root`` is the top level of a git work tree (not a directory inside
    some other repository, such as an unpacked sdist under a user's home repo)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root.resolve():
            return None
        # a detached HEAD (a tag checkout in CI) is reported as "HEAD", as Prometheus' own builds do
        return git("rev-parse", "HEAD"), git("rev-parse", "--abbrev-ref", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None


def _from_existing(path: Path) -> tuple[str, str] | None:
    """The revision and branch an sdist carries (written when the sdist was built from git)."""
    if not path.is_file():
        return None
    values = _assignments(path.read_text(encoding="utf-8"))
    revision, branch = values.get("revision"), values.get("branch")
    if isinstance(revision, str) and isinstance(branch, str) and revision != UNKNOWN:
        return revision, branch
    return None


def _assignments(source: str) -> dict[str, object]:
    """``name: str = "literal"`` lines of a generated file, read without executing it."""
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            values[node.target.id] = ast.literal_eval(node.value)
    return values


def _write_buildinfo(path: Path, version: str, revision: str, branch: str) -> None:
    text = (
        '"""Written by hatch_build.py at build time (not in git): what marketplace_exporter/build.py reports."""\n\n'
        f"version: str = {version!r}\n"
        f"revision: str = {revision!r}\n"
        f"branch: str = {branch!r}\n"
    )
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _load_assets_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("_marketplace_exporter_assets", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
