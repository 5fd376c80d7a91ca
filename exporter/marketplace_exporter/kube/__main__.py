"""``python -m marketplace_exporter.kube [--out DIR] [--check]`` (``make kubernetes``).

Writes the manifests into ``deploy/kubernetes`` of this checkout (or ``--out``); ``--check``
writes nothing and exits 1 listing every file that is missing or differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from marketplace_exporter.kube.layout import files
from marketplace_exporter.kube.sources import REPO_ROOT, read_sources


def stale(out: Path, wanted: dict[str, str]) -> list[str]:
    """The generated files under ``out`` that are missing or differ from ``wanted``."""
    problems = []
    for relative, text in sorted(wanted.items()):
        path = out / relative
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: stale")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketplace_exporter.kube", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the repository (sources are read from it)")
    parser.add_argument("--out", type=Path, default=None, help="default: ROOT/deploy/kubernetes")
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed file is missing or stale")
    args = parser.parse_args(argv)
    out: Path = args.out or args.root / "deploy" / "kubernetes"
    wanted = files(read_sources(args.root))
    if args.check:
        problems = stale(out, wanted)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("regenerate with: make kubernetes", file=sys.stderr)
        return 1 if problems else 0
    for relative, text in sorted(wanted.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} files under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
