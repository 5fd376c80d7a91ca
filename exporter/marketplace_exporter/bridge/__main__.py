"""``python -m marketplace_exporter.bridge bridge|alerts ...``: the bridge's commands on their own
(the same as ``marketplace-exporter bridge`` / ``marketplace-exporter alerts history``)."""

from __future__ import annotations

import argparse
import sys

from marketplace_exporter.bridge.cli import add_commands
from marketplace_exporter.log_format import add_log_flags_everywhere
from marketplace_exporter.serving import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketplace_exporter.bridge")
    add_commands(parser.add_subparsers(dest="command", required=True))
    add_log_flags_everywhere(parser)
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
