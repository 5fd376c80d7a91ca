"""Alerts on sharded exporters (``run --shard=N --total-shards=M``; docs/kubernetes.md).

When a shard's pod is deleted (evicted, its node gone, scaled wrong) its scrape target disappears
with it: there is no ``up == 0`` for MarketplaceExporterDown to see, and its checks' series vanish
instead of going stale, so MarketplaceProbeResultsStale cannot fire either. These rules compare the
shards Prometheus scrapes with the number they say there are (``marketplace_exporter_total_shards``,
like kube-state-metrics' ``kube_state_metrics_total_shard_count``). An unsharded exporter reports
shard 0 of 1, so both stay quiet for it.
"""

from __future__ import annotations

from marketplace_exporter import catalogue as c
from marketplace_exporter.mixin.config import AlertConfig
from marketplace_exporter.mixin.promql import Rule, alert, sel


def distinct_ordinals(ordinal: str) -> str:
    """How many different shards are scraped: two processes claiming one shard (a duplicate, or
    unsharded replicas sharing a PostgreSQL audit log, each "shard 0 of 1") cover it once."""
    return f'count by (job) (count_values by (job) ("ordinal", {ordinal}))'


def shard_rules(cfg: AlertConfig) -> list[Rule]:
    ordinal = sel(cfg.selector, c.SHARD_ORDINAL)
    total = sel(cfg.selector, c.TOTAL_SHARDS)
    # only processes that probe something can probe an account twice: deploy-API replicas sharing a
    # PostgreSQL audit log with a config without checks are each "shard 0 of 1" and harmless
    probing = f"and on (job, instance) {sel(cfg.selector, c.PROBE_INTERVAL)}"
    return [
        alert(
            "MarketplaceExporterShardsMissing",
            f"max by (job) ({total})\n  - {distinct_ordinals(ordinal)}\n  > 0\n",
            cfg.shards_missing_for, "critical", "exporter",
            "Fewer exporter shards are scraped than there are: some seller accounts are not probed.",
            "{{ $labels.job }}: {{ $value }} of its shards cannot be scraped or do not run (the "
            "exporters declare marketplace_exporter_total_shards); their accounts are not probed and "
            "their series are gone, so no stale-results alert can fire for them.",
            "exporter 分片缺失：部分店铺账号没有被探测。",
            "{{ $labels.job }}：有 {{ $value }} 个分片无法抓取或未运行（按 marketplace_exporter_total_shards），"
            "这些分片负责的店铺账号没有探测，相关指标已消失，不会再有“结果过时”告警。",
        ),
        alert(
            "MarketplaceExporterShardsInconsistent",
            f'count by (job) (count_values by (job) ("total", {total} {probing})) > 1\n'
            f'or\nmax by (job) (count_values by (job) ("ordinal", {ordinal} {probing})) > 1\n',
            cfg.shards_inconsistent_for, "warning", "exporter",
            "Exporter shards disagree: two claim the same shard, or they count a different total.",
            "{{ $labels.job }}: two exporter processes run the same --shard, or the processes were "
            "started with different --total-shards: some accounts are probed twice (spending twice "
            "their quota budget) and others by nobody.",
            "exporter 分片配置不一致：两个进程使用同一分片号，或分片总数不同。",
            "{{ $labels.job }}：有两个 exporter 进程使用了相同的 --shard，或各进程的 --total-shards 不一致："
            "部分账号被重复探测（配额消耗翻倍），另一部分无人探测。",
        ),
    ]
