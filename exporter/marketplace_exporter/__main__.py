"""``python -m marketplace_exporter`` is the same as the ``marketplace-exporter`` command."""

from marketplace_exporter.cli import main

raise SystemExit(main())
