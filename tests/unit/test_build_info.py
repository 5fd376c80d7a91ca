"""``marketplace_exporter_build_info``'s labels: version, revision and branch, read without running git.

The ``.git`` reader is checked against the real git on real repositories (a branch, a detached HEAD,
packed refs, a linked worktree, a branch without commits); the checkout this suite runs from is read
as ``git rev-parse`` sees it; and a package that was never built reports the explicit fallback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from marketplace_exporter import __version__, build
from marketplace_exporter import catalogue as c

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "exporter" / "marketplace_exporter"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real repository with two commits on ``main``."""
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    for number in (1, 2):
        (path / "file").write_text(str(number))
        _git(path, "add", "file")
        _git(path, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", str(number))
    return path


def test_a_branch_checkout_reads_as_git_rev_parse_says(repo: Path) -> None:
    assert build.read_git_head(repo) == (_git(repo, "rev-parse", "HEAD"), "main")


def test_a_detached_head_is_branch_HEAD_like_prometheus_tag_builds(repo: Path) -> None:
    first = _git(repo, "rev-parse", "HEAD~1")
    _git(repo, "checkout", "-q", "--detach", first)
    assert build.read_git_head(repo) == (first, "HEAD")


def test_packed_refs_are_read_when_the_loose_ref_is_gone(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    _git(repo, "pack-refs", "--all", "--prune")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert build.read_git_head(repo) == (head, "main")


def test_a_linked_worktree_follows_its_gitdir_and_commondir(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    _git(repo, "worktree", "add", "-q", "-b", "feature/x", str(other), "HEAD~1")
    assert (other / ".git").is_file()
    assert build.read_git_head(other) == (_git(other, "rev-parse", "HEAD"), "feature/x")


def test_a_branch_without_commits_has_an_unknown_revision(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "trunk")
    assert build.read_git_head(tmp_path) == (build.UNKNOWN, "trunk")


def test_no_git_or_a_broken_head_reads_as_none(tmp_path: Path) -> None:
    assert build.read_git_head(tmp_path) is None
    assert build.read_git_head(None) is None
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("not a commit\n")
    assert build.read_git_head(tmp_path) is None


def test_running_from_this_checkout_reports_its_git_head() -> None:
    assert build.checkout_root() == ROOT
    info = build.build_info()
    assert info.revision == _git(ROOT, "rev-parse", "HEAD")
    assert info.branch == _git(ROOT, "rev-parse", "--abbrev-ref", "HEAD")
    assert info.version == __version__
    assert info.python_version == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


def test_label_values_follow_the_catalogue_order() -> None:
    info = build.build_info()
    assert c.BUILD_INFO.labels == (c.VERSION, c.REVISION, c.BRANCH, c.PYTHON_VERSION)
    assert build.build_info_values() == [info.version, info.revision, info.branch, info.python_version]


def test_the_fallback_version_is_the_one_pyproject_declares() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        hatch_version = tomllib.load(file)["tool"]["hatch"]["version"]
    assert hatch_version["source"] == "vcs"
    assert hatch_version["fallback-version"] == build.FALLBACK_VERSION


def test_a_package_that_was_never_built_says_so_instead_of_guessing(tmp_path: Path) -> None:
    """Copied without ``_buildinfo.py`` and outside a checkout (``PYTHONPATH=...``): the fallback
    version and ``unknown`` revision and branch, not a made-up number."""
    shutil.copytree(PACKAGE, tmp_path / "marketplace_exporter",
                    ignore=shutil.ignore_patterns("_buildinfo.py", "__pycache__"))
    script = ("from marketplace_exporter import __version__; from marketplace_exporter.build import build_info; "
              "i = build_info(); print(__version__, i.version, i.revision, i.branch)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [build.FALLBACK_VERSION, build.FALLBACK_VERSION, build.UNKNOWN, build.UNKNOWN]
