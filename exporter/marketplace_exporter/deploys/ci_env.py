"""Defaults for ``deploy mark`` from the CI system's own variables, so a pipeline step needs only
``--service --environment --version`` and still leaves a complete audit row (commit, who, which run).

Recognised: GitHub Actions (``GITHUB_ACTIONS``), GitLab CI (``GITLAB_CI``), Jenkins (``JENKINS_URL``
or ``BUILD_URL``). Outside CI the actor is the local login name. Explicit flags always win.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class CiDefaults:
    provider: str  # "github", "gitlab", "jenkins" or "local"
    commit: str = ""
    actor: str = ""
    pipeline_url: str = ""


def ci_defaults(env: Mapping[str, str]) -> CiDefaults:
    """What the environment says about this run (empty strings for what it does not say)."""
    if env.get("GITHUB_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repository, run = env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID", "")
        url = f"{server}/{repository}/actions/runs/{run}" if repository and run else ""
        return CiDefaults("github", env.get("GITHUB_SHA", ""), env.get("GITHUB_ACTOR", ""), url)
    if env.get("GITLAB_CI") == "true":
        return CiDefaults("gitlab", env.get("CI_COMMIT_SHA", ""),
                          env.get("GITLAB_USER_LOGIN", "") or env.get("GITLAB_USER_NAME", ""),
                          env.get("CI_PIPELINE_URL", "") or env.get("CI_JOB_URL", ""))
    if env.get("JENKINS_URL") or env.get("BUILD_URL"):
        # BUILD_USER_ID/BUILD_USER come from the "build user vars" plugin; without it, no actor
        return CiDefaults("jenkins", env.get("GIT_COMMIT", ""),
                          env.get("BUILD_USER_ID", "") or env.get("BUILD_USER", ""), env.get("BUILD_URL", ""))
    return CiDefaults("local", "", env.get("USER", "") or env.get("USERNAME", ""), "")


__all__ = ["CiDefaults", "ci_defaults"]
