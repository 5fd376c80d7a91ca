"""The version a build gets, from real git clones of this repository built by the real build backend.

- a tagged commit builds as the tag's version, with the commit and branch in the build info;
- a shallow CI clone without tags still builds, as a dev version naming the commit;
- a tree without git metadata (GitHub's source ZIP, a Docker build context) builds as the explicit
  fallback ``0.0.0+unknown`` with an ``unknown`` revision, unless the Dockerfile's build args say more;
- an sdist carries its revision to the wheel built from it.

Each build is hatchling in-process (no build isolation, no network), about a second.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from marketplace_exporter.build import FALLBACK_VERSION, UNKNOWN

ROOT = Path(__file__).resolve().parents[2]
HATCHLING = Path(sys.executable).parent / "hatchling"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


def _build(project: Path, out: Path, target: str = "wheel", **env: str) -> Path:
    """Build ``target`` of ``project`` into ``out``; the one artefact built."""
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("SETUPTOOLS_SCM", "MARKETPLACE_EXPORTER_"))}
    result = subprocess.run([str(HATCHLING), "build", "--target", target, "--directory", str(out)], cwd=project,
                            capture_output=True, text=True, timeout=120, env={**clean_env, **env})
    assert result.returncode == 0, result.stdout + result.stderr
    (artefact,) = out.glob("*.whl" if target == "wheel" else "*.tar.gz")
    return artefact


def _wheel_build_info(wheel: Path) -> tuple[str, dict[str, object]]:
    """(version in the wheel's file name, the values of its _buildinfo.py)."""
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("marketplace_exporter/_buildinfo.py").decode()
    values = {node.target.id: ast.literal_eval(node.value) for node in ast.parse(source).body
              if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None}
    return wheel.name.split("-")[1], values


def _clone(tmp_path: Path, *args: str) -> Path:
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "--quiet", "--no-tags", *args, f"file://{ROOT}", str(clone))
    return clone


def test_a_tagged_commit_builds_as_the_tag_with_its_commit_and_branch(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    _git(clone, "tag", "v9.8.7")
    version, info = _wheel_build_info(_build(clone, tmp_path / "dist"))
    assert version == "9.8.7"
    assert info == {"version": "9.8.7", "revision": _git(clone, "rev-parse", "HEAD"),
                    "branch": _git(clone, "rev-parse", "--abbrev-ref", "HEAD")}


def test_a_shallow_clone_without_tags_builds_as_a_dev_version_naming_the_commit(tmp_path: Path) -> None:
    clone = _clone(tmp_path, "--depth", "1")
    _git(clone, "checkout", "--quiet", "--detach")
    version, info = _wheel_build_info(_build(clone, tmp_path / "dist"))
    short = _git(clone, "rev-parse", "--short=9", "HEAD")
    assert re.fullmatch(rf"0\.0\.1\.dev\d+\+unknown\.g{short[:7]}[0-9a-f]*", version), version
    assert info["revision"] == _git(clone, "rev-parse", "HEAD") and info["branch"] == "HEAD"


def test_a_tree_without_git_builds_as_the_explicit_fallback_unless_build_args_say_more(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD"], capture_output=True,
                             check=True, timeout=60).stdout
    (tmp_path / "src.tar").write_bytes(archive)
    with tarfile.open(tmp_path / "src.tar") as tar:
        tar.extractall(tree, filter="data")
    assert not (tree / ".git").exists()
    version, info = _wheel_build_info(_build(tree, tmp_path / "plain"))
    assert version == FALLBACK_VERSION and info["revision"] == UNKNOWN and info["branch"] == UNKNOWN
    # the Dockerfile's path: its build args become these variables
    version, info = _wheel_build_info(_build(
        tree, tmp_path / "docker", SETUPTOOLS_SCM_PRETEND_VERSION="1.2.3",
        MARKETPLACE_EXPORTER_REVISION="0123456789abcdef0123456789abcdef01234567", MARKETPLACE_EXPORTER_BRANCH="HEAD"))
    assert (version, info["revision"], info["branch"]) == ("1.2.3", "0123456789abcdef0123456789abcdef01234567", "HEAD")


def test_an_sdist_carries_its_revision_to_the_wheel_built_from_it(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    _git(clone, "tag", "v4.5.6")
    sdist = _build(clone, tmp_path / "sdist", target="sdist")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (project,) = (tmp_path / "unpacked").iterdir()
    version, info = _wheel_build_info(_build(project, tmp_path / "dist"))
    assert (version, info["revision"]) == ("4.5.6", _git(clone, "rev-parse", "HEAD"))
    with zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl"))) as wheel:
        assert "marketplace_exporter/_assets/dashboards/overview.json" in wheel.namelist()
