"""Keeps a replica's deploy metrics in step with an audit log other replicas write too.

With ``--storage.url postgresql://...`` a marker posted to replica A is in the shared log at once
(the deploy API and the gate read the log), but replica B's ``marketplace_deploy*`` metrics are
folded in memory (:class:`.state.DeployState`). Every ``interval`` B reads the rows after the
last one it folded in — an indexed range query — so both replicas export the same counters and
"latest deploy" within seconds, and a dashboard or an Argo/Flagger query reading either agrees.
A database outage only delays this (logged once); the next poll catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from marketplace_exporter.deploys.model import DeployRecord
from marketplace_exporter.deploys.state import DeployState
from marketplace_exporter.deploys.storage import AuditLog, StorageUnavailable

log = logging.getLogger(__name__)

#: how often a replica reads the rows other replicas wrote (a scrape interval or less)
FOLLOW_INTERVAL = 5.0


async def follow(audit_log: AuditLog, state: Callable[[], DeployState], interval: float = FOLLOW_INTERVAL) -> None:
    """Poll forever (until cancelled)."""
    down = False
    while True:
        await asyncio.sleep(interval)
        current = state()
        try:
            rows = await asyncio.to_thread(_rows_after, audit_log, current.watermark)
        except StorageUnavailable as exc:
            if not down:
                log.warning("deploy metrics: cannot read other replicas' markers now: %s", exc)
            down = True
            continue
        if down:
            log.info("deploy metrics: the audit log is reachable again")
            down = False
        current.follow(rows)


def _rows_after(audit_log: AuditLog, watermark: int) -> list[DeployRecord]:
    return list(audit_log.replay(after=watermark))


@contextlib.asynccontextmanager
async def following(audit_log: AuditLog, state: Callable[[], DeployState],
                    interval: float = FOLLOW_INTERVAL) -> AsyncIterator[None]:
    """Run :func:`follow` while the app runs, for a shared log only."""
    if not audit_log.shared:
        yield
        return
    task = asyncio.create_task(follow(audit_log, state, interval), name="deploy-log-follow")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = ["FOLLOW_INTERVAL", "follow", "following"]
