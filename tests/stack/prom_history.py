"""Seventy minutes of what Prometheus would have scraped from two exporter shards, written as
OpenMetrics for ``promtool tsdb create-blocks-from openmetrics``: deterministic and fast (no
waiting for real scrapes), with the same series names and labels the exporter exports.

Four deploys, all ``started`` at ``marker`` (7 minutes before the end), each on its own site:

    good-app   US: probes healthy throughout; its own calls to amazon_sp at 1 % errors
    bad-app    DE: from a minute after the marker every probe fails (auth), and its own calls
               fail 60 % of the time
    slow-app   JP: probes keep succeeding but the API calls take 1.2 s instead of 0.2 s
    new-app    BR: no check probes BR: nothing to compare with

Shard ``b`` restarts 20 minutes before the end (its counters start again at 0): ``increase()``
must see through that. A plain module: ``from prom_history import History``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from marketplace_exporter import catalogue as c

STEP = 15
SPAN = 70 * 60
BUCKETS = c.REQUEST_DURATION_BUCKETS
#: site → (marketplace, account, check, exporter shard)
CHECKS = {
    "US": ("amazon_sp", "us-main", "marketplace_participations", "a"),
    "DE": ("amazon_sp", "eu-main", "marketplace_participations", "b"),
    "JP": ("amazon_sp", "fe-main", "marketplace_participations", "a"),
}
SERVICES = {"good-app": "US", "bad-app": "DE", "slow-app": "JP", "new-app": "BR"}
FAILURE_REASONS = ("auth", "server_error")


@dataclass
class History:
    end: int
    series: dict[str, dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))

    @property
    def start(self) -> int:
        return self.end - SPAN

    @property
    def marker(self) -> int:
        return self.end - 7 * 60

    @property
    def broken_from(self) -> int:
        """The rollout took a minute: the new version serves from here."""
        return self.marker + 60

    @property
    def restart(self) -> int:
        return self.end - 20 * 60

    def add(self, family: str, name: str, labels: dict[str, str], at: int, value: float) -> None:
        key = (("__name__", name), *sorted(labels.items()))
        self.series[family][key].append((at, value))


def build(end: float) -> History:
    history = History(end=int(end) // STEP * STEP)
    counters: dict[str, float] = defaultdict(float)
    buckets: dict[tuple[str, float], float] = defaultdict(float)
    for at in range(history.start, history.end + 1, STEP):
        if at == history.restart:  # shard b starts again: its counters begin at 0
            for key in [k for k in counters if k.startswith("b|")]:
                counters[key] = 0.0
            for key in [k for k in buckets if k[0].startswith("b|")]:
                buckets[key] = 0.0
        for site, (marketplace, account, check, shard) in CHECKS.items():
            broken = at >= history.broken_from
            failed = site == "DE" and broken
            latency = 1.2 if site == "JP" and broken else 0.2
            prefix = f"{shard}|{site}"
            counters[prefix + "|probes"] += 1
            if failed:
                counters[prefix + "|auth"] += 1
            else:
                counters[prefix + "|count"] += 1
                counters[prefix + "|sum"] += latency
                for bound in (*BUCKETS, float("inf")):
                    if latency <= bound:
                        buckets[(prefix, bound)] += 1
            probe = {"instance": f"exporter-{shard}:9761", "job": "marketplace-exporter", "marketplace": marketplace,
                     "site": site, "account": account, "check": check}
            history.add(c.PROBES.name, c.PROBES.name, probe, at, counters[prefix + "|probes"])
            for reason in FAILURE_REASONS:
                history.add(c.PROBE_FAILURES.name, c.PROBE_FAILURES.name, {**probe, "reason": reason}, at,
                            counters[prefix + "|" + reason])
            hist = {k: v for k, v in probe.items() if k != "account"}
            family = c.REQUEST_DURATION.name
            for bound in (*BUCKETS, float("inf")):
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                history.add(family, family + "_bucket", {**hist, "le": le}, at, buckets[(prefix, bound)])
            history.add(family, family + "_count", hist, at, counters[prefix + "|count"])
            history.add(family, family + "_sum", hist, at, counters[prefix + "|sum"])
        _traffic(history, counters, at)
        if at >= history.marker:
            for service in SERVICES:
                for shard in ("a", "b"):  # every replica exports the (shared) log's latest marker
                    history.add(c.DEPLOY_TIMESTAMP.name, c.DEPLOY_TIMESTAMP.name,
                                {"instance": f"exporter-{shard}:9761", "job": "marketplace-exporter",
                                 "service": service, "environment": "production", "status": "started"},
                                at, float(history.marker))
    return history


def _traffic(history: History, counters: dict[str, float], at: int) -> None:
    """good-app and bad-app report 60 calls a minute (15 a step) to amazon_sp through shard a."""
    for service, site in (("good-app", "US"), ("bad-app", "DE")):
        error_share = 0.6 if service == "bad-app" and at >= history.broken_from else 0.01
        counters[f"a|{service}|calls"] += 15
        counters[f"a|{service}|errors"] += 15 * error_share
        base = {"instance": "exporter-a:9761", "job": "marketplace-exporter", "marketplace": "amazon_sp",
                "site": site, "account": "main", "operation": "getOrders", "service": service}
        history.add(c.CLIENT_REQUESTS.name, c.CLIENT_REQUESTS.name, {**base, "status_class": "2xx"}, at,
                    round(counters[f"a|{service}|calls"] - counters[f"a|{service}|errors"]))
        history.add(c.CLIENT_REQUESTS.name, c.CLIENT_REQUESTS.name, {**base, "status_class": "4xx"}, at,
                    round(counters[f"a|{service}|errors"]))
        history.add(c.CLIENT_ERRORS.name, c.CLIENT_ERRORS.name,
                    {**base, "reason": "auth", "code": "Unauthorized"}, at, round(counters[f"a|{service}|errors"]))


def write_openmetrics(history: History, path: Path) -> None:
    kinds = {c.PROBES.name: "counter", c.PROBE_FAILURES.name: "counter", c.REQUEST_DURATION.name: "histogram",
             c.DEPLOY_TIMESTAMP.name: "gauge", c.CLIENT_REQUESTS.name: "counter", c.CLIENT_ERRORS.name: "counter"}
    with path.open("w", encoding="utf-8") as out:
        for family, series in history.series.items():
            name = family.removesuffix("_total") if kinds[family] == "counter" else family
            out.write(f"# TYPE {name} {kinds[family]}\n")
            for key, samples in series.items():
                metric = dict(key)["__name__"]
                labels = ",".join(f'{k}="{v}"' for k, v in key if k != "__name__")
                for at, value in samples:
                    # repr: every digit back (a deploy timestamp has 10); ":g" kept 6 and moved the
                    # marker by up to 5000 s, out of (or into) the history depending on the hour
                    out.write(f"{metric}{{{labels}}} {float(value)!r} {at}\n")
        out.write("# EOF\n")
