"""Reading what bench/scale.py collected: series of a scrape by prefix, Prometheus' histogram
interpolation, the probe-lateness buckets, the longest ``/-/healthy`` wait in given windows, and
percentiles."""

from __future__ import annotations


def longest_wait(pings: list[tuple[float, float]], windows: list[tuple[float, float]]) -> float:
    """The longest /-/healthy answer among pings sent in (or waiting across) any window, ms."""
    worst = 0.0
    for start, latency in pings:
        if any(a - latency <= start <= b for a, b in windows):
            worst = max(worst, latency)
    return worst * 1000


def gauge_lines(text: bytes, prefix: bytes) -> dict[bytes, float]:
    out = {}
    for line in text.split(b"\n"):
        if line.startswith(prefix):
            labels, _, value = line.rpartition(b" ")
            out[labels[len(prefix):]] = float(value)
    return out


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' interpolation over cumulative (le, count) buckets."""
    total = buckets[-1][1]
    if total <= 0:
        return float("nan")
    rank, prev_le, prev_count = q * total, 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-9)
        prev_le, prev_count = le, count
    return prev_le


def lateness(text: bytes) -> list[tuple[float, float]]:
    prefix = b'marketplace_exporter_probe_lateness_seconds_bucket{le="'
    return [(float(k.split(b'"')[0]), v) for k, v in gauge_lines(text, prefix).items()]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
