"""marketplace-exporter: a Prometheus exporter for marketplace seller APIs.

Probes run in the background on their own schedule (marketplace quotas forbid probing on every
scrape); ``/metrics`` only reads the latest results.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
