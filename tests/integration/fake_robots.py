"""Fake DingTalk, WeCom and Feishu group robots (and a generic webhook) on 127.0.0.1.

They check what the real robots check and answer the way the real ones do (chat-robots.md):
- DingTalk ``POST /robot/send?access_token=T[&timestamp=&sign=]``: unknown token → 300001; signed
  robots recompute HMAC-SHA256(key=secret, msg=ts+"\\n"+secret) after ONE URL decode and answer
  310000 ``sign not match`` / ``invalid timestamp`` (±1 h); body > 20,000 bytes → 460101; a
  malformed markdown/at structure → 40035; more than 20 sends in 60 s → 130101. Always HTTP 200.
- WeCom ``POST /cgi-bin/webhook/send?key=K``: unknown key → 93000; markdown content > 4,096 bytes
  → 40058 (text > 2,048 bytes too); > 20 sends in 60 s → 45009. Always HTTP 200.
- Feishu ``POST /open-apis/bot/v2/hook/ID``: unknown id → "incoming webhook access token
  invalid"; signed bots recompute HMAC-SHA256(key=ts+"\\n"+secret, msg="") → 19021; body > 20,000
  bytes → HTTP 400 code 9499; > 5 sends a second or 100 a minute → 11232.
- generic ``POST /hook/ID`` → 200.

Tests (and the e2e stack) tell a robot to misbehave for a while: ``robots.fail("dingtalk",
"http_500", seconds=2)``; modes ``http_500``, ``throttle``, ``security``, ``disconnect``. Over HTTP:
``POST /__robots/faults {"robot": "dingtalk", "mode": "throttle", "seconds": 5}``,
``DELETE /__robots/faults``, ``GET /__robots/messages``. As a process::

    python tests/integration/fake_robots.py --listen 127.0.0.1:9764 \\
        --robot dingtalk:TOKEN:SECRET --robot wecom:KEY --robot feishu:HOOKID:SECRET:KEYWORD
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DINGTALK_LIMIT = 20000
WECOM_MARKDOWN_LIMIT = 4096
WECOM_TEXT_LIMIT = 2048
FEISHU_LIMIT = 20000


@dataclass(frozen=True)
class Robot:
    kind: str  # dingtalk | wecom | feishu | webhook
    token: str  # access_token / key / hook id
    secret: str | None = None
    keyword: str | None = None


@dataclass
class Received:
    """One request a robot got, with what it answered."""

    kind: str
    token: str
    at: float
    size: int
    body: Any
    code: int
    status: int

    @property
    def ok(self) -> bool:
        return self.code == 0 and self.status == 200

    @property
    def text(self) -> str:
        """The message text as the chat would show it."""
        body = self.body if isinstance(self.body, dict) else {}
        if self.kind == "dingtalk":
            part = body.get("markdown") or body.get("text") or {}
            return str(part.get("text") or part.get("content") or "")
        if self.kind == "wecom":
            return str((body.get("markdown") or body.get("text") or {}).get("content", ""))
        if self.kind == "feishu":
            card = body.get("card") or {}
            return "\n".join(str(e.get("content", "")) for e in card.get("elements", []) if isinstance(e, dict))
        return str(body.get("text", ""))

    @property
    def title(self) -> str:
        body = self.body if isinstance(self.body, dict) else {}
        if self.kind == "dingtalk":
            return str((body.get("markdown") or {}).get("title", ""))
        if self.kind == "feishu":
            return str(((body.get("card") or {}).get("header") or {}).get("title", {}).get("content", ""))
        return str(body.get("title", ""))


@dataclass
class Fault:
    mode: str
    until: float | None
    count: int | None


@dataclass
class FakeRobots:
    robots: list[Robot]
    #: per-robot send limits (None: no limit), as (count, window seconds) lists
    limits: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: {
        "dingtalk": [(20, 60.0)], "wecom": [(20, 60.0)], "feishu": [(100, 60.0), (5, 1.0)], "webhook": []})
    received: list[Received] = field(default_factory=list)
    faults: dict[str, Fault] = field(default_factory=dict)
    #: per-kind (min, max) seconds a robot takes to ANSWER after it counted the request (uneven
    #: networks: a sender that counts its sends at answer time sees them later than the robot)
    latency: dict[str, tuple[float, float]] = field(default_factory=dict)
    _sends: dict[str, deque[float]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    # --- control --------------------------------------------------------------------------------
    def fail(self, robot: str, mode: str, *, seconds: float | None = None, count: int | None = None) -> None:
        """Make a robot (by kind or token) misbehave for ``seconds`` or ``count`` requests."""
        if mode not in ("http_500", "throttle", "security", "disconnect"):
            raise ValueError(f"unknown fault mode {mode!r}")
        until = time.monotonic() + seconds if seconds is not None else None
        self.faults[robot] = Fault(mode, until, count)

    def clear(self) -> None:
        self.faults.clear()

    def delivered(self, kind: str | None = None) -> list[Received]:
        return [r for r in self.received if r.ok and (kind is None or r.kind == kind)]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` is true (re-checked on every request)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"fake robots: condition not met in {timeout}s; got {len(self.received)} "
                                   f"request(s): {[(r.kind, r.code, r.status) for r in self.received][-10:]}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout=min(left, 0.2))
            except TimeoutError:
                pass

    def url(self, kind: str, token: str) -> str:
        base = f"http://127.0.0.1:{self.port}"
        if kind == "dingtalk":
            return f"{base}/robot/send?access_token={token}"
        if kind == "wecom":
            return f"{base}/cgi-bin/webhook/send?key={token}"
        if kind == "feishu":
            return f"{base}/open-apis/bot/v2/hook/{token}"
        return f"{base}/hook/{token}"

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/robot/send", self._dingtalk)
        app.router.add_post("/cgi-bin/webhook/send", self._wecom)
        app.router.add_post("/open-apis/bot/v2/hook/{token}", self._feishu)
        app.router.add_post("/hook/{token}", self._webhook)
        app.router.add_get("/__robots/messages", self._list)
        app.router.add_post("/__robots/faults", self._add_fault)
        app.router.add_delete("/__robots/faults", self._clear_faults)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """Stop listening (connections are refused, as when a robot endpoint is down)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- shared checks --------------------------------------------------------------------------
    def _robot(self, kind: str, token: str) -> Robot | None:
        return next((r for r in self.robots if r.kind == kind and r.token == token), None)

    def _fault(self, robot: Robot) -> str | None:
        for key in (robot.token, robot.kind):
            fault = self.faults.get(key)
            if fault is None:
                continue
            if fault.until is not None and time.monotonic() > fault.until:
                del self.faults[key]
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count < 0:
                    del self.faults[key]
                    continue
            return fault.mode
        return None

    def _over_limit(self, robot: Robot) -> bool:
        sends = self._sends.setdefault(robot.token, deque())
        now = time.monotonic()
        for count, window in self.limits.get(robot.kind, []):
            if sum(1 for t in sends if t > now - window) >= count:
                return True
        sends.append(now)
        while sends and sends[0] < now - 3600:
            sends.popleft()
        return False

    def _record(self, kind: str, token: str, raw: bytes, body: Any, code: int, status: int,
                answer: dict[str, Any]) -> web.Response:
        self.received.append(Received(kind, token, time.time(), len(raw), body, code, status))
        self.arrived.set()
        return web.json_response(answer, status=status)

    async def _slow(self, kind: str, response: web.StreamResponse) -> web.StreamResponse:
        """Answer after the kind's configured latency (the request was already counted)."""
        low, high = self.latency.get(kind, (0.0, 0.0))
        if high > 0:
            await asyncio.sleep(random.uniform(low, high))
        return response

    @staticmethod
    def _json(raw: bytes) -> Any:
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    # --- DingTalk -------------------------------------------------------------------------------
    async def _dingtalk(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        token = request.query.get("access_token", "")
        body = self._json(raw)

        def answer(code: int, msg: str) -> web.Response:
            return self._record("dingtalk", token, raw, body, code, 200, {"errcode": code, "errmsg": msg})

        robot = self._robot("dingtalk", token)
        if robot is None:
            return answer(300001, "token is not exist")
        fault = self._fault(robot)
        if fault == "disconnect":
            return self._disconnect(request)
        if fault == "http_500":
            return self._record("dingtalk", token, raw, body, -1, 500, {"error": "internal"})
        if robot.secret is not None:
            timestamp, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
            if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3600_000:
                return answer(310000, "invalid timestamp")
            expected = base64.b64encode(hmac.new(robot.secret.encode(), f"{timestamp}\n{robot.secret}".encode(),
                                                 hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(sign, expected):
                return answer(310000, "description:机器人发送签名不匹配;solution:请确认签名和时间戳都放到调用的url中")
        if fault == "security":
            return answer(310000, "sign not match")
        if len(raw) > DINGTALK_LIMIT:
            return answer(460101, f"message too long, exceed {DINGTALK_LIMIT} bytes")
        problem = _dingtalk_problem(body)
        if problem:
            return answer(40035, f"缺少参数 {problem}")
        if robot.keyword and robot.keyword not in json.dumps(body, ensure_ascii=False):
            return answer(310000, "keywords not in content")
        if fault == "throttle" or self._over_limit(robot):
            return answer(130101, "send too fast, exceed 20 times per minute")
        return answer(0, "ok")

    # --- WeCom ----------------------------------------------------------------------------------
    async def _wecom(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        token = request.query.get("key", "")
        body = self._json(raw)

        def answer(code: int, msg: str) -> web.Response:
            return self._record("wecom", token, raw, body, code, 200, {"errcode": code, "errmsg": msg})

        robot = self._robot("wecom", token)
        if robot is None:
            return answer(93000, "invalid webhook url, hint: [1700000000_7_abcdef], from ip: 127.0.0.1")
        fault = self._fault(robot)
        if fault == "disconnect":
            return self._disconnect(request)
        if fault == "http_500":
            return self._record("wecom", token, raw, body, -1, 500, {"error": "internal"})
        if fault == "security":
            return answer(93000, "invalid webhook url, hint: [1700000000_7_abcdef]")
        if not isinstance(body, dict) or body.get("msgtype") not in ("markdown", "text"):
            return answer(40008, "invalid message type")
        part = body.get(body["msgtype"])
        if not isinstance(part, dict) or not isinstance(part.get("content"), str) or not part["content"]:
            return answer(44004, "empty content")
        limit = WECOM_MARKDOWN_LIMIT if body["msgtype"] == "markdown" else WECOM_TEXT_LIMIT
        if len(part["content"].encode("utf-8")) > limit:
            return answer(40058, f"{body['msgtype']}.content exceed max length {limit}. invalid Request Parameter")
        if fault == "throttle" or self._over_limit(robot):
            return await self._slow("wecom", answer(45009, "api freq out of limit"))
        return await self._slow("wecom", answer(0, "ok"))

    # --- Feishu ---------------------------------------------------------------------------------
    async def _feishu(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        token = request.match_info["token"]
        body = self._json(raw)

        def answer(code: int, msg: str, status: int = 200) -> web.Response:
            payload: dict[str, Any] = {"code": code, "msg": msg, "data": {}}
            if code == 0:
                payload.update(StatusCode=0, StatusMessage="success")
            return self._record("feishu", token, raw, body, code, status, payload)

        robot = self._robot("feishu", token)
        if robot is None:
            return answer(19001, "param invalid: incoming webhook access token invalid")
        fault = self._fault(robot)
        if fault == "disconnect":
            return self._disconnect(request)
        if fault == "http_500":
            return self._record("feishu", token, raw, body, -1, 500, {"error": "internal"})
        if len(raw) > FEISHU_LIMIT or not isinstance(body, dict):
            return answer(9499, "Bad Request", 400)
        if robot.secret is not None:
            timestamp = str(body.get("timestamp", ""))
            key = f"{timestamp}\n{robot.secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= 3600
            if not fresh or not hmac.compare_digest(str(body.get("sign", "")), expected):
                return answer(19021, "sign match fail or timestamp is not within one hour from current time")
        if fault == "security":
            return answer(19021, "sign match fail or timestamp is not within one hour from current time")
        problem = _feishu_problem(body)
        if problem:
            return answer(9499, f"Bad Request: {problem}", 400)
        if robot.keyword and robot.keyword not in json.dumps(body, ensure_ascii=False):
            return answer(19024, "Key Words Not Found")
        if fault == "throttle" or self._over_limit(robot):
            return answer(11232, "frequency limited")
        return answer(0, "success")

    # --- generic webhook ------------------------------------------------------------------------
    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        token = request.match_info["token"]
        body = self._json(raw)
        robot = self._robot("webhook", token)
        if robot is None:
            return self._record("webhook", token, raw, body, 404, 404, {"error": "no such hook"})
        fault = self._fault(robot)
        if fault == "disconnect":
            return self._disconnect(request)
        if fault == "http_500":
            return self._record("webhook", token, raw, body, 500, 500, {"error": "internal"})
        if fault == "throttle":
            return self._record("webhook", token, raw, body, 429, 429, {"error": "slow down"})
        return self._record("webhook", token, raw, body, 0, 200, {"ok": True})

    def _disconnect(self, request: web.Request) -> web.StreamResponse:
        self.arrived.set()
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    # --- control API ----------------------------------------------------------------------------
    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response([{"kind": r.kind, "token": r.token, "at": r.at, "size": r.size, "code": r.code,
                                   "status": r.status, "title": r.title, "text": r.text} for r in self.received])

    async def _add_fault(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.fail(str(data["robot"]), str(data["mode"]), seconds=data.get("seconds"), count=data.get("count"))
        return web.json_response({"ok": True})

    async def _clear_faults(self, request: web.Request) -> web.Response:
        self.clear()
        return web.json_response({"ok": True})


def _dingtalk_problem(body: Any) -> str:
    if not isinstance(body, dict):
        return "json"
    if body.get("msgtype") == "markdown":
        part = body.get("markdown")
        if not isinstance(part, dict) or not isinstance(part.get("title"), str) or not part.get("title"):
            return "markdown.title"
        if not isinstance(part.get("text"), str) or not part.get("text"):
            return "markdown.text"
    elif body.get("msgtype") == "text":
        if not isinstance(body.get("text"), dict) or not isinstance(body["text"].get("content"), str):
            return "text.content"
    else:
        return "msgtype"
    at = body.get("at", {})
    if not isinstance(at, dict):
        return "at"
    for key in ("atMobiles", "atUserIds"):
        if key in at and not (isinstance(at[key], list) and all(isinstance(v, str) for v in at[key])):
            return f"at.{key}"
    if "isAtAll" in at and not isinstance(at["isAtAll"], bool):
        return "at.isAtAll"
    return ""


def _feishu_problem(body: dict[str, Any]) -> str:
    kind = body.get("msg_type")
    if kind == "interactive":
        card = body.get("card")
        if not isinstance(card, dict) or not isinstance(card.get("elements"), list):
            return "card.elements"
        for element in card["elements"]:
            if not isinstance(element, dict) or element.get("tag") not in ("markdown", "div", "hr", "note", "action"):
                return "card element tag"
        return ""
    if kind == "text":
        content = body.get("content")
        return "" if isinstance(content, dict) and isinstance(content.get("text"), str) else "content.text"
    if kind == "post":
        return "" if isinstance(body.get("content"), dict) else "content.post"
    return "msg_type"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--robot", action="append", default=[], help="KIND:TOKEN[:SECRET[:KEYWORD]]")
    args = parser.parse_args()
    robots = []
    for spec in args.robot:
        kind, token, *rest = spec.split(":", 3)
        robots.append(Robot(kind, token, rest[0] if rest and rest[0] else None, rest[1] if len(rest) > 1 else None))
    port = int(args.listen.rpartition(":")[2])

    async def serve() -> None:
        fake = FakeRobots(robots)
        base = await fake.start(port)
        print(f"fake robots on {base}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
