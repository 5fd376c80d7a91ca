"""``marketplace-exporter rules generate``: the alert rules and routing for YOUR Prometheus.

Works from the installed package (no repository needed)::

    marketplace-exporter rules generate --out ./rules                      # the defaults
    marketplace-exporter rules generate --config mixin.yml --out ./rules   # your job, thresholds, owners...
    marketplace-exporter rules generate --config mixin.yml --out ./rules --check   # exit 1 when stale
    marketplace-exporter rules example > mixin.yml                         # every key, commented

``mixin.yml`` overrides any field of :class:`~marketplace_exporter.mixin.config.AlertConfig`
(``alert-rules/mixin.example.yml`` in the repository lists them all with their defaults).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from marketplace_exporter.mixin.config import PROFILES

#: "keep the config's own token file" (generate.KEEP; repeated here to keep the import lazy)
KEEP = "keep"


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rules = sub.add_parser("rules", help="Prometheus alert rules and Alertmanager routing (the mixin)")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    generate = rules_sub.add_parser(
        "generate", help="write marketplace-alerts.yml, alertmanager.yml, alertmanager-route.yml and "
                         "alertmanager-config.yml (prometheus-operator) for a mixin config")
    generate.add_argument("--config", "--config.file", dest="mixin_config", metavar="FILE", default=None,
                          help="mixin.yml overriding AlertConfig fields (default: the built-in defaults); "
                               "--config.file as for run and bridge")
    generate.add_argument("--out", type=Path, default=Path("."), help="output directory (default: %(default)s)")
    generate.add_argument("--check", action="store_true",
                          help="write nothing; exit 1 and name the files in --out that are missing or stale")
    generate.add_argument("--profile", default="default", choices=sorted(PROFILES),
                          help="default, or test (short for/timers, for end-to-end tests)")
    generate.add_argument("--bridge-url", default=None,
                          help="bridge base URL for the webhook receivers (default: the config's, http://bridge:9762)")
    generate.add_argument("--bridge-credentials-file", default=KEEP,
                          help="file with the bridge's bearer token, read by Alertmanager ('' for none; default: "
                               "the config's, /etc/alertmanager/bridge-token, or none for the test profile)")
    generate.set_defaults(handler=_generate)
    example = rules_sub.add_parser("example", help="print every mixin.yml key with its default and what it is for")
    example.set_defaults(handler=_example)


def _example(args: argparse.Namespace) -> int:
    from marketplace_exporter.mixin.example import example_yaml

    sys.stdout.write(example_yaml())
    return 0


def _generate(args: argparse.Namespace) -> int:
    from marketplace_exporter.mixin.generate import profile_config, render_files, stale_files, write_files
    from marketplace_exporter.mixin.loader import MixinConfigError, load

    try:
        base = load(args.mixin_config) if args.mixin_config else None
    except MixinConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 2
    files = render_files(profile_config(args.profile, args.bridge_url, args.bridge_credentials_file, base=base))
    if args.check:
        stale = stale_files(args.out, files)
        for name in stale:
            print(f"{args.out / name} is missing or stale: run marketplace-exporter rules generate "
                  f"--out {args.out}" + (f" --config {args.mixin_config}" if args.mixin_config else ""),
                  file=sys.stderr)
        return 1 if stale else 0
    for path in write_files(args.out, files).values():
        print(f"wrote {path}")
    return 0
