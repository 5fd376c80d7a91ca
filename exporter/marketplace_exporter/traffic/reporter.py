"""Sends traffic records to the exporter in the background; the caller never waits on it.

The caller's path only appends to a bounded ``deque``: when the exporter is down or slow the queue
fills and the OLDEST records are dropped (the newest say most about "now"), counted, and the count
travels with the next batch that gets through (``marketplace_traffic_records_total{result="dropped"}``).

One daemon thread per :class:`Reporter` does the sending with the standard library's ``urllib``:
it works the same for sync and async clients (an asyncio task would need a loop in sync code), and
using none of the instrumented client libraries means the reporter can never report (or recurse
into) itself. Nothing here raises into the caller: a failed send is logged once per outage, kept for
one retry with back-off, and new records keep flowing into the bounded queue meanwhile.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import threading
import urllib.error
import urllib.request
import weakref
from collections import deque

from marketplace_exporter.traffic.classify import TrafficRecord, label

log = logging.getLogger(__name__)

TRAFFIC_PATH = "/api/v1/traffic"
#: the environment variable the reporter reads its Bearer token from when none is given
TOKEN_ENV = "MARKETPLACE_EXPORTER_TRAFFIC_TOKEN"
_MAX_BACKOFF = 30.0


class Reporter:
    """Batches records and POSTs them to ``{exporter}/api/v1/traffic``.

    ``service`` names the reporting system (``erp``, ``order-sync``): a label on every series, so
    keep it to a handful of values. ``instance`` (default: host name) is sent for the exporter's
    logs, not as a label. ``max_queue`` bounds memory (a record is ~200 bytes).
    """

    def __init__(self, exporter_url: str, *, service: str, instance: str | None = None,
                 token: str | None = None, max_queue: int = 10_000, batch_size: int = 1_000,
                 interval: float = 1.0, timeout: float = 2.0) -> None:
        self.url = exporter_url.rstrip("/") + TRAFFIC_PATH
        self.service = label(service, "service")
        self.instance = (instance or socket.gethostname())[:128]
        self._token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        self._queue: deque[TrafficRecord] = deque(maxlen=max_queue)
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._interval = interval
        self._timeout = timeout
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pending: list[dict[str, object]] = []
        self._pending_dropped = 0
        #: records lost to a full queue, not yet reported to the exporter
        self.dropped = 0
        #: totals for tests and the caller's own curiosity
        self.sent = 0
        self.failed_sends = 0
        self._failing = False

    # --- the caller's path ------------------------------------------------------------------------
    def add(self, record: TrafficRecord) -> None:
        """Queue one record: O(1), never blocks on I/O, never raises."""
        try:
            if len(self._queue) >= self._max_queue:
                with self._lock:
                    self.dropped += 1  # the append below pushes the oldest out
            self._queue.append(record)
            if self._thread is None:
                self._start()
        except Exception:  # noqa: BLE001 - reporting must never break the caller
            log.debug("traffic record not queued", exc_info=True)

    # --- the background sender ----------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name="marketplace-traffic-reporter", daemon=True)
            self._thread = thread
        thread.start()
        _LIVE.add(self)

    def _run(self) -> None:
        delay = self._interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            closing = self._closed
            ok = self.flush_once()
            delay = self._interval if ok else min(max(delay, self._interval) * 2, _MAX_BACKOFF)
            if closing:
                return

    def flush_once(self) -> bool:
        """Send what is queued (in batches) plus any batch that failed before; False on failure."""
        while True:
            if not self._pending:
                records = [self._queue.popleft().wire() for _ in range(min(len(self._queue), self._batch_size))]
                with self._lock:
                    dropped, self.dropped = self.dropped, 0
                if not records and not dropped:
                    return True
                self._pending, self._pending_dropped = records, dropped
            if not self._send(self._pending, self._pending_dropped):
                return False
            self.sent += len(self._pending)
            self._pending, self._pending_dropped = [], 0
            if not self._queue:
                return True

    def _send(self, records: list[dict[str, object]], dropped: int) -> bool:
        body = json.dumps({"service": self.service, "instance": self.instance, "dropped": dropped,
                           "records": records}, separators=(",", ":")).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                # refused for good (bad token, malformed batch): retrying would loop forever
                self.failed_sends += 1
                log.warning("exporter refused traffic batch: HTTP %s: %s (batch of %d dropped)",
                            exc.code, _refusal_reason(exc), len(records))
                with self._lock:
                    self.dropped += len(records)
                return True
            return self._failed(exc)
        except Exception as exc:  # noqa: BLE001 - timeouts, refused, reset: retry later
            return self._failed(exc)
        self._failing = False
        return True

    def _failed(self, exc: BaseException) -> bool:
        if not self._failing:  # once per outage, not once per retry
            self._failing = True
            log.warning("cannot send traffic records to %s: %s (queued records are kept, oldest "
                        "dropped when %d are waiting)", self.url, exc, self._max_queue)
        self.failed_sends += 1
        return False

    def close(self, timeout: float = 2.0) -> None:
        """Send what is left (best effort, at most ``timeout`` seconds) and stop the thread."""
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._wake.set()
            thread.join(timeout)
        _LIVE.discard(self)

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._queue.clear()
        self._pending, self._pending_dropped = [], 0
        self.dropped = self.sent = self.failed_sends = 0
        self._failing = False

    @property
    def queued(self) -> int:
        return len(self._queue)


_LIVE: weakref.WeakSet[Reporter] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for reporter in list(_LIVE):
        reporter.close(timeout=1.0)


def _after_fork_in_child() -> None:
    """A pre-forking server (gunicorn ``--preload``, uwsgi) forks after the parent may already
    have started the sender thread: in the child that thread does not exist. Give every reporter a
    fresh lock, event and (lazily started) thread, and an empty queue: the parent reports its own
    records, so the child must not report them a second time."""
    for reporter in list(_LIVE):
        reporter._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _refusal_reason(exc: urllib.error.HTTPError) -> str:
    """The exporter's ``{"error": ...}`` text (what to fix: the token variable, a field), bounded; the
    request's token is never part of it (the server does not echo it)."""
    try:
        body = json.loads(exc.read(4096).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return exc.reason if isinstance(exc.reason, str) else "no reason given"
    error = body.get("error") if isinstance(body, dict) else None
    return str(error)[:300] if error else "no reason given"
