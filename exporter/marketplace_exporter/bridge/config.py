"""The bridge's YAML config (``bridge.yml``): receivers, robots, auth, storage; located errors.

Every error names the file, the line, the key path and what was expected, the same way the
exporter's config does (``bridge.yml:12: receivers.ops.channel: expected 'dingtalk', 'wecom',
'feishu' or 'webhook', got 'slack'``). Robot URLs carry the robot's key and are therefore
:class:`~marketplace_exporter.secrets.Secret` references (``${ENV}``, ``{file: PATH}``,
``{value: ...}``); signing secrets too. Neither is ever quoted in an error.

Example::

    storage_path: /var/lib/marketplace-bridge/outbox.db
    auth: {bearer_token: ${BRIDGE_TOKEN}}
    defaults: {language: zh, timezone: Asia/Shanghai, grafana_url: http://grafana:3000}
    receivers:
      ops-dingtalk:
        channel: dingtalk
        url: ${DINGTALK_URL}          # https://oapi.dingtalk.com/robot/send?access_token=...
        secret: ${DINGTALK_SECRET}    # SEC... (加签)
        mentions: {mobiles: ["13800000000"]}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from marketplace_exporter.config.yaml_loading import (
    ConfigError,
    KeyPath,
    LineMap,
    dotted,
    pydantic_errors,
    read_yaml,
    require_mapping,
)
from marketplace_exporter.config_types import Duration
from marketplace_exporter.secrets import Secret

ChannelKind = Literal["dingtalk", "wecom", "feishu", "webhook"]
Language = Literal["zh", "en"]

#: documented per-robot limits (chat-robots.md §1.6, §2.4, §3.6): messages per minute, per second
CHANNEL_RATES: dict[str, tuple[float, float | None]] = {
    "dingtalk": (20.0, None),
    "wecom": (20.0, None),
    "feishu": (100.0, 5.0),
    "webhook": (600.0, None),
}
#: pacing inside the minute: at most this many messages in any 10 s, so a storm does not spend the
#: whole minute's budget in one second and then stay silent for up to a minute (merged messages
#: carry what waits meanwhile)
CHANNEL_PER_10S: dict[str, int] = {"dingtalk": 5, "wecom": 5, "feishu": 0, "webhook": 0}
#: how long to wait after a throttle code before trying again (DingTalk blocks for 10 minutes after
#: an overrun, WeCom's block length is unknown: one minute is the documented window)
CHANNEL_THROTTLE_BACKOFF: dict[str, float] = {"dingtalk": 60.0, "wecom": 60.0, "feishu": 10.0, "webhook": 10.0}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


#: a phone number as DingTalk's atMobiles takes it
Mobile = Annotated[str, Field(pattern=r"^\+?[0-9][0-9\-]{4,19}$")]
#: a DingTalk/WeCom userid or a Feishu open_id/user_id: nothing that opens markup (``<``, ``>``)
UserId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")]


class Mentions(_Strict):
    """Who the robot @-mentions on every message of this receiver. Alerts may add people through
    the labels/annotations named in ``mobiles_from``/``user_ids_from``, but only people listed in
    ``allowed_mobiles``/``allowed_user_ids``: a label value is data from whoever writes alert rules
    or exposes metrics, and must not be able to @ everyone (``all``) or anyone it likes."""

    mobiles: tuple[Mobile, ...] = ()
    user_ids: tuple[UserId, ...] = ()
    all: bool = False
    #: label/annotation names whose comma-separated values add mobiles and user ids
    mobiles_from: tuple[str, ...] = ("dingtalk_at_mobiles", "at_mobiles")
    user_ids_from: tuple[str, ...] = ("dingtalk_at_user_ids", "wecom_mentions", "feishu_at_user_ids", "at_user_ids")
    #: who alerts may add; any other value in those labels is not mentioned
    allowed_mobiles: tuple[Mobile, ...] = ()
    allowed_user_ids: tuple[UserId, ...] = ()
    #: at most this many people per message; the rest are counted ("and N more"), so a message
    #: with thousands of mentions still fits the robot's body limit and arrives
    max_mentions: int = Field(default=20, ge=0, le=200)

    @field_validator("user_ids", "allowed_user_ids")
    @classmethod
    def _not_everyone(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(user.lower() in ("all", "@all") for user in value):
            raise ValueError("'all' is not a user id; set mentions.all: true to @ everyone")
        return value


class RateLimit(_Strict):
    per_minute: float = Field(default=0, ge=0, description="0: the channel's documented limit")
    per_second: float = Field(default=0, ge=0, description="0: the channel's documented limit (if any)")
    per_10s: int | None = Field(default=None, ge=0, description="pacing; unset: 5 for DingTalk/WeCom, 0 = none")


class Receiver(_Strict):
    channel: ChannelKind
    url: Secret
    secret: Secret | None = None
    language: Language | None = None
    timezone: str | None = None
    grafana_url: str | None = None
    alertmanager_url: str | None = None
    runbook_base_url: str | None = None
    mentions: Mentions = Mentions()
    rate_limit: RateLimit = RateLimit()
    throttle_backoff: Duration | None = None
    #: the robot's security keyword, if it uses one: every title then contains it
    keyword: str | None = None


class Defaults(_Strict):
    language: Language = "zh"
    timezone: str = "Asia/Shanghai"
    grafana_url: str | None = None
    alertmanager_url: str | None = None
    #: prefix for relative runbook_url annotations such as ``docs/runbooks.md#x``
    runbook_base_url: str | None = None


class BasicAuth(_Strict):
    username: str
    password: Secret


class Auth(_Strict):
    """Who may post webhooks (and ``POST /-/reload``). One of the two credentials is required, as
    Alertmanager sends them (``http_config.authorization.credentials_file`` or ``basic_auth``), or
    ``anonymous: true`` for a trusted network, which the bridge warns about at every start."""

    bearer_token: Secret | None = None
    basic: BasicAuth | None = None
    anonymous: bool = False


class Retry(_Strict):
    initial_backoff: Duration = 1.0
    #: the cap of a robot's outage back-off: messages flow again at most this long after the robot
    #: is back (one probe per robot per interval while it is down, so it is never hammered)
    max_backoff: Duration = 20.0
    #: security failures (bad signature, unknown key) are retried this many times, then held
    security_attempts: int = Field(default=3, ge=1)
    request_timeout: Duration = 10.0


class BridgeModel(_Strict):
    storage_path: str = "bridge-outbox.db"
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    dedupe_window: Duration = 600.0
    archive_retention: Duration = 90 * 86400.0
    #: where notifications for an unknown receiver go; unset: answer 503 (see docs/bridge.md)
    fallback_receiver: str | None = None
    auth: Auth = Auth()
    defaults: Defaults = Defaults()
    retry: Retry = Retry()
    receivers: dict[str, Receiver]

    @field_validator("receivers")
    @classmethod
    def _some_receiver(cls, value: dict[str, Receiver]) -> dict[str, Receiver]:
        if not value:
            raise ValueError("expected at least one receiver")
        return value


@dataclass(frozen=True)
class ReceiverConfig:
    """One receiver with every default resolved: what the renderer and the worker use."""

    name: str
    channel: str
    url: Secret
    secret: Secret | None
    language: str
    timezone: ZoneInfo
    grafana_url: str | None
    alertmanager_url: str | None
    runbook_base_url: str | None
    mentions: Mentions
    per_minute: float
    per_second: float | None
    per_10s: int
    throttle_backoff: float
    keyword: str | None
    #: changes when anything that affects delivery changes (a reload restarts only those workers)
    fingerprint: str


@dataclass(frozen=True)
class BridgeConfig:
    path: str
    storage_path: str
    max_body_bytes: int
    dedupe_window: float
    archive_retention: float
    fallback_receiver: str | None
    auth: Auth
    retry: Retry
    receivers: dict[str, ReceiverConfig]


def load_bridge_config(path: str | Path, *, text: str | None = None) -> BridgeConfig:
    """Parse and validate ``bridge.yml``; raise :class:`ConfigError` listing every problem."""
    name = str(path)
    model, lines, errors = _parse_model(name, text)
    receivers = {}
    for key, receiver in model.receivers.items():
        resolved = _resolve(key, receiver, model, lines, errors)
        if resolved is not None:
            receivers[key] = resolved
    if model.fallback_receiver is not None and model.fallback_receiver not in model.receivers:
        errors.append(lines.error(("fallback_receiver",), f"expected one of the receivers "
                                  f"({', '.join(sorted(model.receivers))}), got {model.fallback_receiver!r}"))
    errors += _auth_problems(model.auth, lines)
    for spot, secret in _secrets(model):
        problem = secret.check_available()
        if problem is not None:
            errors.append(lines.error(spot, problem))
    if errors:
        raise ConfigError(errors)
    return BridgeConfig(
        path=name, storage_path=_storage(name, model), max_body_bytes=model.max_body_bytes,
        dedupe_window=model.dedupe_window, archive_retention=model.archive_retention,
        fallback_receiver=model.fallback_receiver, auth=model.auth, retry=model.retry, receivers=receivers)


def outbox_path(path: str | Path) -> str:
    """The outbox file ``bridge.yml`` names, without resolving any secret.

    ``alerts history`` only reads the archive: whoever reviews it (an auditor, the on-call after an
    incident) must not need the robots' webhook URLs, signing secrets or the bridge token in their
    environment. Raises :class:`ConfigError` for a file that is unreadable or not a valid bridge.yml.
    """
    name = str(path)
    model, _, errors = _parse_model(name, None)
    if errors:
        raise ConfigError(errors)
    return _storage(name, model)


def _storage(name: str, model: BridgeModel) -> str:
    storage = Path(model.storage_path)
    return str(storage if storage.is_absolute() else Path(name).parent / storage)


def _parse_model(name: str, text: str | None) -> tuple[BridgeModel, LineMap, list[str]]:
    """YAML → validated model, the key → line map, and the (line-located) errors found so far."""
    root, data = read_yaml(name, text)
    lines = LineMap.of(name, root)
    errors = list(lines.errors)
    raw = require_mapping(name, data)
    try:
        model = BridgeModel.model_validate(raw)
    except ValidationError as exc:
        errors.extend(pydantic_errors(exc, lines, secret_keys=_SECRET_KEYS))
        raise ConfigError(errors) from None
    return model, lines, errors


def _resolve(key: str, receiver: Receiver, model: BridgeModel, lines: LineMap,
             errors: list[str]) -> ReceiverConfig | None:
    defaults = model.defaults
    where: KeyPath = ("receivers", key)
    before = len(errors)

    def error(spot: KeyPath, text: str) -> None:
        errors.append(lines.error(spot, text))

    tz_name = receiver.timezone or defaults.timezone
    zone = None
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        spot = (*where, "timezone") if receiver.timezone else ("defaults", "timezone")
        if not any(f": {dotted(spot)}: " in e for e in errors):
            error(spot, f"expected an IANA time zone such as Asia/Shanghai, got {tz_name!r}")
    if receiver.channel in ("wecom", "webhook") and receiver.secret is not None:
        error((*where, "secret"), f"{receiver.channel} robots have no signing secret; remove the key")
    for link_key in ("grafana_url", "alertmanager_url", "runbook_base_url"):
        value = getattr(receiver, link_key) or getattr(defaults, link_key)
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            spot = (*where, link_key) if getattr(receiver, link_key) else ("defaults", link_key)
            if not any(f": {dotted(spot)}: " in e for e in errors):
                error(spot, f"expected an http(s) URL, got {value!r}")
    if len(errors) > before or zone is None:
        return None
    rate, per_second = CHANNEL_RATES[receiver.channel]
    throttle = receiver.throttle_backoff or CHANNEL_THROTTLE_BACKOFF[receiver.channel]
    per_minute = receiver.rate_limit.per_minute or rate
    pace = receiver.rate_limit.per_10s
    second = receiver.rate_limit.per_second or per_second
    fingerprint = repr((receiver.model_dump(mode="json"), defaults.model_dump(mode="json"),
                        receiver.url.describe(), receiver.secret.describe() if receiver.secret else None))
    return ReceiverConfig(
        name=key, channel=receiver.channel, url=receiver.url, secret=receiver.secret,
        language=receiver.language or defaults.language, timezone=zone,
        grafana_url=receiver.grafana_url or defaults.grafana_url,
        alertmanager_url=receiver.alertmanager_url or defaults.alertmanager_url,
        runbook_base_url=receiver.runbook_base_url or defaults.runbook_base_url,
        mentions=receiver.mentions, per_minute=per_minute, per_second=second,
        per_10s=CHANNEL_PER_10S[receiver.channel] if pace is None else pace,
        throttle_backoff=throttle,
        keyword=receiver.keyword, fingerprint=fingerprint)


def _auth_problems(auth: Auth, lines: LineMap) -> list[str]:
    """On f014b6e a bridge.yml without ``auth`` accepted anyone's webhooks, silently: anonymous posts
    reached DingTalk. Now credentials are required unless anonymity is asked for by name."""
    has_credentials = auth.bearer_token is not None or auth.basic is not None
    if not has_credentials and not auth.anonymous:
        return [lines.error(("auth",), "expected bearer_token or basic (what Alertmanager's webhook_configs send "
                                       "with http_config.authorization / basic_auth), or anonymous: true to accept "
                                       "webhooks from anyone who can reach the bridge")]
    if has_credentials and auth.anonymous:
        return [lines.error(("auth", "anonymous"), "expected no anonymous: true next to credentials (they would "
                                                   "be pointless); remove one or the other")]
    return []


def _secrets(model: BridgeModel) -> list[tuple[KeyPath, Secret]]:
    found: list[tuple[KeyPath, Secret]] = []
    if model.auth.bearer_token is not None:
        found.append((("auth", "bearer_token"), model.auth.bearer_token))
    if model.auth.basic is not None:
        found.append((("auth", "basic", "password"), model.auth.basic.password))
    for key, receiver in model.receivers.items():
        found.append((("receivers", key, "url"), receiver.url))
        if receiver.secret is not None:
            found.append((("receivers", key, "secret"), receiver.secret))
    return found


_SECRET_KEYS = ("url", "secret", "password", "bearer_token")
