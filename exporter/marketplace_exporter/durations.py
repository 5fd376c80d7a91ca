"""Prometheus-style durations ("500ms", "30s", "5m", "1h", "1d") as float seconds in config."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: public for the config type (config_types.Duration) that documents it in the JSON Schema (as
#: ``^...$``, which ECMA-262 anchors at the very end); Python matches it with ``fullmatch``
PATTERN = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(raw: object) -> float:
    """"30s" → 30.0. Plain numbers are seconds. Zero and negatives are rejected."""
    if isinstance(raw, bool):
        raise ValueError(f"expected a duration such as 30s or 5m, got {raw!r}")
    if isinstance(raw, int | float):
        seconds = float(raw)
    elif isinstance(raw, str) and (match := PATTERN.fullmatch(raw.strip())):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 30s or 5m, got {raw!r}")
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {raw!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """30.0 → "30s", 300 → "5m": for pages and docs."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"

