"""The reference scenario of probe_cost: Debian's prometheus-blackbox-exporter, driven by wrk."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from probe_cost_processes import BenchError, Children, Target, Window, free_port, http_get, proc_cpu, wait_until

BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"

BLACKBOX_CONFIG = """\
modules:
  bench_http:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      valid_status_codes: [200]
      method: GET
      fail_if_body_not_matches_regexp:
        - '"status": *"ok"'
"""

# one wrk thread: counts probe results by reading blackbox's answer
WRK_SCRIPT = """\
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; failed = 0; non200 = 0 end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1
  elseif string.find(body, "\\nprobe_success 1", 1, true) then ok = ok + 1
  else failed = failed + 1 end
end
function done(summary, latency, requests)
  local ok, failed, non200 = 0, 0, 0
  for _, t in ipairs(threads) do
    ok = ok + t:get("ok"); failed = failed + t:get("failed"); non200 = non200 + t:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "ok": %d, "failed": %d, "non200": %d, "errors": %d}\\n',
    summary.requests, summary.duration, ok, failed, non200,
    e.connect + e.read + e.write + e.timeout))
end
"""


class Blackbox:
    def __init__(self, children: Children, workdir: Path, prober_core: int | None,
                 load_core: int | None, target: Target, connections: int) -> None:
        self.children = children
        self.target = target
        self.load_core = load_core
        self.connections = connections
        (workdir / "blackbox.yml").write_text(BLACKBOX_CONFIG)
        self.script = workdir / "probe.lua"
        self.script.write_text(WRK_SCRIPT)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.probe_url = f"{self.base}/probe?module=bench_http&target={target.url}"
        self.proc = children.start(
            "blackbox",
            [BLACKBOX, f"--config.file={workdir / 'blackbox.yml'}", f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"],
            prober_core, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until("blackbox", lambda: http_get(self.base + "/-/healthy")[0] == 200, self.proc)
        status, body = http_get(self.probe_url, timeout=6)
        if status != 200 or b"\nprobe_success 1" not in body:
            raise BenchError(f"blackbox sanity probe failed ({status}):\n{body.decode(errors='replace')[:2000]}")

    def run_wrk(self, seconds: float) -> dict[str, int]:
        argv = ["wrk", "-t1", f"-c{self.connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
                "-s", str(self.script), self.probe_url]
        proc = self.children.start("wrk", argv, self.load_core, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        out, err = proc.communicate(timeout=seconds + 30)
        self.children.procs = [(n, p) for n, p in self.children.procs if p is not proc]
        if proc.returncode != 0:
            raise BenchError(f"wrk failed ({proc.returncode}): {err.strip()}")
        for line in out.splitlines():
            if line.startswith("WRKJSON "):
                return dict(json.loads(line[len("WRKJSON "):]))
        raise BenchError(f"wrk printed no result:\n{out}\n{err}")

    def measure(self, seconds: float, warmup: float) -> Window:
        if warmup > 0:
            self.run_wrk(warmup)  # connections to blackbox, Go's pools and GC settle
        cpu0, (tcpu0, treq0) = proc_cpu(self.proc.pid), self.target.sample()
        result = self.run_wrk(seconds)
        cpu1, (tcpu1, treq1) = proc_cpu(self.proc.pid), self.target.sample()
        if self.proc.poll() is not None:
            raise BenchError(f"blackbox died with status {self.proc.returncode}")
        answered = result["ok"] + result["failed"] + result["non200"]
        failures = result["failed"] + result["non200"] + result["errors"]
        detail = (f"{result['failed']} probe_success 0, {result['non200']} non-200, "
                  f"{result['errors']} socket errors" if failures else "")
        window = Window(probes=answered, seconds=result["duration_us"] / 1e6, cpu=cpu1 - cpu0,
                        target_cpu=tcpu1 - tcpu0, target_requests=treq1 - treq0,
                        failures=failures, failure_detail=detail)
        if window.busy < 0.8:
            window.warning = (f"blackbox only {window.busy:.0%} busy (other processes on the cores?): "
                              "µs/probe less comparable")
        return window


def blackbox_version() -> str:
    proc = subprocess.run([BLACKBOX, "--version"], capture_output=True, text=True, check=False)
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else "unknown"
