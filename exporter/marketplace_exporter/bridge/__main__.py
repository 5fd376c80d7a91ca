"""``python -m marketplace_exporter.bridge bridge|alerts ...``: the bridge's commands on their own
(the same as ``marketplace-exporter bridge`` / ``marketplace-exporter alerts history``)."""

from __future__ import annotations

import argparse
import sys

from marketplace_exporter.bridge.cli import add_commands
from marketplace_exporter.serving import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketplace_exporter.bridge")
    parser.add_argument("--log.level", dest="log_level", default="info", choices=["debug", "info", "warning", "error"])
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
