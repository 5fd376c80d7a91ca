"""Lint and strict typing are part of the suite, so `make test` (and CI) keeps them clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "exporter", "tests", "bench", "hatch_build.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean_on_the_package() -> None:
    result = _run("mypy", "exporter/marketplace_exporter", "hatch_build.py")
    assert result.returncode == 0, result.stdout + result.stderr
