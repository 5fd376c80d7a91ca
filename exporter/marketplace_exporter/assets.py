"""``marketplace-exporter assets list|export DIR``: the files a deployment needs besides the exporter.

The Grafana dashboards, the Prometheus alert rules with their promtool tests, the Alertmanager config,
the Prometheus config and Grafana provisioning of the compose stack, and the example configs. Someone
who installed the wheel from PyPI has no git checkout, so the wheel carries them under
``marketplace_exporter/_assets/`` with their repository paths (``hatch_build.py`` copies them at build
time; git holds one copy). ``export`` writes them out with the same layout, so the relative paths
between them (a rule test's ``rule_files: [../marketplace-alerts.yml]``) keep working.

What ships is the ``assets`` list of globs in pyproject.toml's ``[tool.hatch.build.hooks.custom]``;
:func:`match_assets` expands it both at build time and when running from a source checkout, where the
files are read in place. Only the standard library is imported at module level: ``hatch_build.py``
loads this file by path, before the package is installable.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
WHEEL_ASSETS = _PACKAGE_DIR / "_assets"
#: example configs are ordinary package data (``marketplace-exporter demo`` reads demo.yml from there)
EXAMPLES = _PACKAGE_DIR / "examples"


class AssetsError(Exception):
    """A user-facing error: printed as ``error: ...`` and exit status 1."""


def match_assets(root: Path, patterns: Iterable[str]) -> dict[str, Path]:
    """Repository-relative path → file, for every file under ``root`` a glob matches (sorted). A glob that
    matches nothing is an error: a renamed file must fail the build, not vanish from the wheel."""
    found: dict[str, Path] = {}
    for pattern in patterns:
        files = sorted(path for path in root.glob(pattern) if path.is_file())
        if not files:
            raise AssetsError(f"asset glob {pattern!r} matches no file under {root}")
        found.update((path.relative_to(root).as_posix(), path) for path in files)
    return dict(sorted(found.items()))


def checkout_patterns(root: Path) -> list[str]:
    """The ``assets`` globs from a source checkout's pyproject.toml."""
    with (root / "pyproject.toml").open("rb") as file:
        config = tomllib.load(file)
    patterns = config["tool"]["hatch"]["build"]["hooks"]["custom"]["assets"]
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise AssetsError(f"{root / 'pyproject.toml'}: [tool.hatch.build.hooks.custom] assets must be a list of globs")
    return patterns


def shipped() -> dict[str, Path]:
    """Every asset: its export path → the file it is read from (the wheel's copy, or the checkout's)."""
    from marketplace_exporter.build import checkout_root

    if WHEEL_ASSETS.is_dir():
        files = {path.relative_to(WHEEL_ASSETS).as_posix(): path
                 for path in WHEEL_ASSETS.rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    elif (root := checkout_root()) is not None:
        files = match_assets(root, checkout_patterns(root))
    else:
        raise AssetsError(f"this installation has no assets ({WHEEL_ASSETS} is missing): "
                          "reinstall marketplace-exporter from a wheel or run it from a source checkout")
    files.update((f"examples/{path.name}", path) for path in EXAMPLES.glob("*.yml"))
    return dict(sorted(files.items()))


@dataclass(frozen=True)
class ExportResult:
    written: list[str]
    unchanged: list[str]


def export(destination: Path, force: bool = False) -> ExportResult:
    """Write every asset under ``destination``. A file already there with other content is never
    overwritten without ``force``: all such paths are reported and nothing is written."""
    if destination.exists() and not destination.is_dir():
        raise AssetsError(f"{destination} exists and is not a directory")
    assets = shipped()
    contents = {relative: source.read_bytes() for relative, source in assets.items()}
    unchanged = [rel for rel, data in contents.items() if _read_or_none(destination / rel) == data]
    differing = [rel for rel in contents if rel not in unchanged and (destination / rel).exists()]
    if differing and not force:
        shown = "\n".join(f"  {destination / rel}" for rel in differing[:20])
        more = f"\n  ... and {len(differing) - 20} more" if len(differing) > 20 else ""
        raise AssetsError(f"{len(differing)} file(s) in {destination} differ from this version's assets and were "
                          f"left alone (nothing was written):\n{shown}{more}\n"
                          "use --force to overwrite them, or export into an empty directory and compare")
    written = [rel for rel in contents if rel not in unchanged]
    for relative in written:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(contents[relative])
    return ExportResult(written=written, unchanged=unchanged)


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


# --- command line ---------------------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    assets = sub.add_parser("assets", help="the dashboards, alert rules, Alertmanager/Grafana configs and "
                                           "example configs this version ships")
    commands = assets.add_subparsers(dest="assets_command", required=True)
    listing = commands.add_parser("list", help="print the path of every shipped asset")
    listing.set_defaults(handler=_list)
    out = commands.add_parser("export", help="write every asset into DIR with the repository's layout")
    out.add_argument("dir", help="target directory (created if missing)")
    out.add_argument("--force", action="store_true",
                     help="overwrite files in DIR whose content differs (default: refuse and list them)")
    out.set_defaults(handler=_export)


def _list(args: argparse.Namespace) -> int:
    try:
        assets = shipped()
    except AssetsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for relative in assets:
        print(relative)
    return 0


def _export(args: argparse.Namespace) -> int:
    from marketplace_exporter import __version__

    destination = Path(args.dir)
    try:
        result = export(destination, force=args.force)
    except (AssetsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"marketplace-exporter {__version__}: {len(result.written)} file(s) written to {destination}, "
          f"{len(result.unchanged)} already up to date")
    tops: dict[str, int] = {}
    for relative in result.written + result.unchanged:
        top = relative.split("/", 1)[0]
        tops[top] = tops.get(top, 0) + 1
    for top, count in sorted(tops.items()):
        print(f"  {top}/  {count} file(s)")
    print(f"next: promtool test rules {destination}/alert-rules/tests/*.test.yml; "
          f"Grafana provisioning in {destination}/deploy/grafana/provisioning/")
    return 0
