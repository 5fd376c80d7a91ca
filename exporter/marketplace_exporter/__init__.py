"""marketplace-exporter: a Prometheus exporter for marketplace seller APIs.

Probes run in the background on their own schedule (marketplace quotas forbid probing on every
scrape); ``/metrics`` only reads the latest results.
"""

from __future__ import annotations

from marketplace_exporter.build import VERSION as __version__

__all__ = ["__version__"]
