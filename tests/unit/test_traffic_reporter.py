"""The reporter's caller-side contract: O(1) appends, oldest dropped and counted when full, and
nothing ever raised into the caller, whatever the exporter does."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from marketplace_exporter.traffic.classify import TrafficRecord
from marketplace_exporter.traffic.reporter import Reporter


def record(duration: float) -> TrafficRecord:
    return TrafficRecord("shopee", "SG", "sg-main", "get_shop_info", 200, "", "", duration, None)


class Sink:
    """A real HTTP server on port 0 that keeps the batches it got (or answers ``status``)."""

    def __init__(self, status: int = 200, body: bytes = b"{}") -> None:
        self.batches: list[dict[str, Any]] = []
        self.headers: list[str] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers["Content-Length"])
                sink.batches.append(json.loads(self.rfile.read(length)))
                sink.headers.append(self.headers.get("Authorization", ""))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_full_queue_drops_the_oldest_and_reports_the_count_with_the_next_batch() -> None:
    sink = Sink()
    try:
        reporter = Reporter(sink.url, service="erp", token="t0k", max_queue=3, interval=3600)
        for i in range(5):
            reporter.add(record(float(i)))
        assert reporter.queued == 3 and reporter.dropped == 2
        assert reporter.flush_once()
        reporter.close()
    finally:
        sink.close()
    (batch,) = sink.batches
    assert batch["service"] == "erp" and batch["dropped"] == 2
    assert [r["duration"] for r in batch["records"]] == [2.0, 3.0, 4.0]  # the newest survived
    assert sink.headers == ["Bearer t0k"]


def test_batches_are_bounded_in_size() -> None:
    sink = Sink()
    try:
        reporter = Reporter(sink.url, service="erp", batch_size=4, interval=3600)
        for i in range(10):
            reporter.add(record(float(i)))
        assert reporter.flush_once()
        reporter.close()
    finally:
        sink.close()
    assert [len(b["records"]) for b in sink.batches] == [4, 4, 2]
    assert reporter.sent == 10


def test_a_refused_batch_is_not_retried_forever_and_is_counted_as_dropped() -> None:
    sink = Sink(status=401)
    try:
        reporter = Reporter(sink.url, service="erp", interval=3600)
        reporter.add(record(0.1))
        assert reporter.flush_once()
        assert reporter.dropped == 1 and reporter.failed_sends == 1
        reporter.close()
    finally:
        sink.close()


def test_a_refused_batch_logs_the_exporters_reason(caplog: pytest.LogCaptureFixture) -> None:
    """An operator reading the ERP's log learns what to fix (the token variable), not just "401"."""
    sink = Sink(status=401, body=b'{"error": "invalid Bearer token"}')
    try:
        reporter = Reporter(sink.url, service="erp", interval=3600, token="wrong-token-value")
        reporter.add(record(0.1))
        with caplog.at_level(logging.WARNING, logger="marketplace_exporter.traffic.reporter"):
            assert reporter.flush_once()
        reporter.close()
    finally:
        sink.close()
    assert "HTTP 401: invalid Bearer token (batch of 1 dropped)" in caplog.text
    assert "wrong-token-value" not in caplog.text


def test_nothing_raises_into_the_caller_even_when_the_queue_is_broken() -> None:
    reporter = Reporter("http://127.0.0.1:9", service="erp", interval=3600)
    reporter._queue = None  # type: ignore[assignment]
    reporter.add(record(0.1))  # swallowed, not raised
    reporter.close(timeout=0.1)


def test_a_forked_child_starts_its_own_sender_and_does_not_resend_the_parents_records() -> None:
    from marketplace_exporter.traffic import reporter as module

    sink = Sink()
    try:
        reporter = Reporter(sink.url, service="erp", interval=3600)
        reporter.add(record(1.0))  # the parent's record; its sender thread is now running
        module._after_fork_in_child()  # what os.register_at_fork runs in a child
        assert reporter.queued == 0 and reporter._thread is None
        reporter.add(record(2.0))
        assert reporter._thread is not None and reporter._thread.is_alive()
        reporter.close()
    finally:
        sink.close()
    assert [r["duration"] for b in sink.batches for r in b["records"]] == [2.0]
