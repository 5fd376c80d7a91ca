"""``GET /probe?check=ID[&debug=true]``: one configured check's result, blackbox-exporter style.

Only configured checks can be probed (``check`` is an id, never a URL: no request goes anywhere a
caller names). What may be sent upstream is decided by the engine (engine/on_demand.py): at most
one probe per check per interval, shared by concurrent callers, within the quota budget, never
while the platform's Retry-After holds, and never recorded as the check's own result. So:

* plain: the check's metrics from the newest result younger than its interval (the background
  probe's, usually: ``X-Probe-Result: cached`` and ``Age``), or from a fresh probe (``fresh``, or
  ``shared`` when another request's probe answered both);
* ``debug=true``: the redacted trace of a fresh probe, or, once the check's on-demand probe is
  spent, the last trace with a first line saying how old it is and when a fresh one is possible;
* 429 with ``Retry-After`` when nothing can be sent and nothing is kept (quota, Retry-After).

Authentication: the web config's basic-auth users guard ``/probe`` like every other path. With
shards, a check another shard probes answers 421 naming that shard (shard_serving.misdirected).
"""

from __future__ import annotations

import math

from aiohttp import web

from marketplace_exporter import shard_serving
from marketplace_exporter.core import Core
from marketplace_exporter.engine.on_demand import Answer, Source
from marketplace_exporter.exposition import Exposition
from marketplace_exporter.store import Store

_NO_STORE = {"Cache-Control": "no-store"}


async def probe(core: Core, request: web.Request) -> web.Response:
    check_id = request.query.get("check", "")
    engine = core.engine
    if not check_id or engine.spec(check_id) is None:
        if (elsewhere := shard_serving.misdirected(core, check_id)) is not None:
            return elsewhere  # another shard's check: 421 naming the owner, nothing sent
        known = "\n".join(sorted(check.id for check in core.config.checks))
        return web.Response(status=404 if check_id else 400,
                            text=f"unknown or missing ?check=; configured checks:\n{known}\n")
    debug = request.query.get("debug", "").lower() in ("1", "true", "yes")
    answer = await engine.probe_on_demand(check_id, debug=debug)
    if answer is None:
        return web.Response(status=404, text="check disappeared during a reload\n")
    if answer.record is None:
        seconds = max(1, math.ceil(answer.next_fresh_in))
        return web.Response(status=429, headers={**_NO_STORE, "Retry-After": str(seconds)},
                            text=f"no probe of {check_id} possible for {seconds}s: {answer.why}\n")
    headers = {**_NO_STORE, "X-Probe-Result": answer.source.value if answer.source else ""}
    if answer.source is Source.CACHED:
        headers["Age"] = str(int(answer.age))
    if debug:
        return web.Response(text=_trace(answer), headers=headers)
    # the probe's own metrics, blackbox-style: a throwaway store holding just this result
    spec = engine.spec(check_id)
    if spec is None:
        return web.Response(status=404, text="check disappeared during a reload\n")
    one = Store()
    one.reconcile((spec,))
    one.record(spec, answer.record, None)
    return web.Response(body=Exposition(one).render(), content_type="text/plain", charset="utf-8",
                        headers=headers)


def _trace(answer: Answer) -> str:
    assert answer.record is not None
    lines = list(answer.record.debug)
    if answer.source is Source.CACHED:
        lines.insert(0, f"# cached: this trace is {answer.age:.0f}s old; a fresh probe of this check is possible "
                        f"in {math.ceil(answer.next_fresh_in)}s ({answer.why})")
    return "\n".join(lines) + "\n"


__all__ = ["probe"]
