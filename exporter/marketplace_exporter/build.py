"""Which build is running: the labels of ``marketplace_exporter_build_info``, like ``prometheus_build_info``.

``version``       the package version: the git tag it was built from (``0.1.0``), ``0.1.devN+g<sha>``
                  between tags, ``0.0.0+unknown`` when built without git metadata or never built
``revision``      the full git commit
``branch``        the git branch; ``HEAD`` for a detached checkout (a tag build in CI), as Prometheus does
``pythonversion`` the interpreter's version (Prometheus' ``goversion``)

Where they come from: an installed wheel, sdist or image carries ``_buildinfo.py``, written once at build
time by ``hatch_build.py``. A source checkout (``pip install -e``, ``make venv``) reads its git HEAD
instead, because the file written at install time goes stale with every commit; the ``.git`` files are
read directly, never by running ``git``, and only once: :func:`build_info` is cached, so a scrape
costs a dictionary lookup.
"""

from __future__ import annotations

import importlib
import platform
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: the version of a package built without git metadata or never built at all; the same string as
#: ``[tool.hatch.version] fallback-version`` in pyproject.toml (a test keeps the two equal)
FALLBACK_VERSION = "0.0.0+unknown"
UNKNOWN = "unknown"

_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")  # SHA-1, or SHA-256 repositories
_PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BuildInfo:
    version: str
    revision: str
    branch: str
    python_version: str


def _generated() -> dict[str, str]:
    """The values ``hatch_build.py`` wrote, or none when the package was never built."""
    try:
        module = importlib.import_module("marketplace_exporter._buildinfo")
    except ImportError:
        return {}
    return {name: value for name in ("version", "revision", "branch")
            if isinstance(value := getattr(module, name, None), str) and value}


VERSION: str = _generated().get("version", FALLBACK_VERSION)


@cache
def build_info() -> BuildInfo:
    generated = _generated()
    head = read_git_head(checkout_root())
    revision, branch = head or (generated.get("revision", UNKNOWN), generated.get("branch", UNKNOWN))
    return BuildInfo(VERSION, revision, branch, platform.python_version())


def build_info_values() -> list[str]:
    """The label values in the catalogue's order of ``BUILD_INFO.labels`` (what the collector emits)."""
    from marketplace_exporter import catalogue as c

    info = build_info()
    by_label = {c.VERSION: info.version, c.REVISION: info.revision, c.BRANCH: info.branch,
                c.PYTHON_VERSION: info.python_version}
    return [by_label[label] for label in c.BUILD_INFO.labels]


def checkout_root() -> Path | None:
    """The repository root when the package runs from a source checkout (``exporter/marketplace_exporter``
    beside ``pyproject.toml``), else None (an installed wheel lives in site-packages)."""
    root = _PACKAGE_DIR.parents[1]
    if _PACKAGE_DIR.parent.name == "exporter" and (root / "pyproject.toml").is_file():
        return root
    return None


def read_git_head(root: Path | None) -> tuple[str, str] | None:
    """(revision, branch) of the work tree at ``root`` from its ``.git`` files: ``HEAD``, loose refs,
    ``packed-refs``, and the ``gitdir:`` pointer and ``commondir`` of a linked worktree. None when there
    is no readable git HEAD; a branch without commits yet gives revision ``unknown``."""
    if root is None:
        return None
    try:
        gitdir = _gitdir(root / ".git")
        if gitdir is None:
            return None
        head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return (head, "HEAD") if _COMMIT.fullmatch(head) else None
        ref = head.removeprefix("ref: ").strip()
        revision = _resolve_ref(gitdir, _common_dir(gitdir), ref)
        return revision, ref.removeprefix("refs/heads/")
    except (OSError, UnicodeDecodeError):
        return None


def _gitdir(dot_git: Path) -> Path | None:
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():  # a linked worktree or a submodule: "gitdir: <path>"
        pointer = dot_git.read_text(encoding="utf-8").strip()
        if pointer.startswith("gitdir:"):
            return (dot_git.parent / pointer.removeprefix("gitdir:").strip()).resolve()
    return None


def _common_dir(gitdir: Path) -> Path:
    """Where a linked worktree's branches live (its ``commondir``), else the git dir itself."""
    pointer = gitdir / "commondir"
    if pointer.is_file():
        return (gitdir / pointer.read_text(encoding="utf-8").strip()).resolve()
    return gitdir


def _resolve_ref(gitdir: Path, common: Path, ref: str) -> str:
    for base in (gitdir, common):
        loose = base / ref
        if loose.is_file():
            value = loose.read_text(encoding="utf-8").strip()
            return value if _COMMIT.fullmatch(value) else UNKNOWN
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            value, _, name = line.partition(" ")
            if name == ref and _COMMIT.fullmatch(value):
                return value
    return UNKNOWN
