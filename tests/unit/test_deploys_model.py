"""Validation of a deploy marker: every refusal names the field, values that become metric labels
are restricted, timestamps must be real and not in the future."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.deploys.model import MAX_FUTURE_SKEW, DeployMarker, MarkerInvalid, parse_marker

NOW = 1_795_000_000.0
VALID = {"service": "listing-sync", "environment": "production", "version": "v1.4.2"}


def _field_error(body: Any) -> tuple[str, str]:
    with pytest.raises(MarkerInvalid) as caught:
        parse_marker(body, now=NOW)
    return caught.value.field, caught.value.message


def test_a_minimal_marker_gets_defaults() -> None:
    assert parse_marker(VALID, now=NOW) == DeployMarker("listing-sync", "production", "v1.4.2")
    assert parse_marker(VALID, now=NOW).status is DeployStatus.SUCCEEDED


def test_a_full_marker_keeps_every_field() -> None:
    marker = parse_marker({**VALID, "commit": "0a1b2c3d4e5f", "sites": ["US", "DE", "US"], "status": "started",
                           "pipeline_url": "https://github.com/acme/app/actions/runs/1", "actor": "张伟",
                           "notes": "大促前热修复\nline two", "timestamp": "2026-11-10T10:00:00+08:00"}, now=NOW)
    assert marker.sites == ("US", "DE")
    assert marker.status is DeployStatus.STARTED
    assert marker.actor == "张伟" and marker.notes.startswith("大促")
    assert marker.timestamp == datetime(2026, 11, 10, 2, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("missing", ["service", "environment", "version"])
def test_a_missing_required_field_is_named(missing: str) -> None:
    body = {key: value for key, value in VALID.items() if key != missing}
    field, message = _field_error(body)
    assert field == missing and message.startswith("required")  # and says what is expected


@pytest.mark.parametrize(("field", "value"), [
    ("service", "listing sync"),          # space: not label-safe
    ("service", "x" * 64),                # too long for a label
    ("environment", "prod{env}"),
    ("service", 42),
    ("version", "v1 beta"),
    ("version", "v" * 129),
    ("commit", "not-a-sha"),
    ("sites", "US,D E"),
    ("sites", [1, 2]),
    ("sites", ["US"] * 65),
    ("status", "done"),
    ("status", 1),
    ("pipeline_url", "javascript:alert(1)"),
    ("actor", "a" * 129),
    ("actor", "bot\nFORGED LINE"),
    ("notes", "bell\x07"),
    ("notes", "n" * 4097),
])
def test_an_invalid_value_is_refused_naming_the_field(field: str, value: object) -> None:
    assert _field_error({**VALID, field: value})[0] == field


def test_an_unknown_field_is_named_rather_than_ignored() -> None:
    field, message = _field_error({**VALID, "envirnoment": "prod"})
    assert field == "envirnoment" and "unknown field" in message


@pytest.mark.parametrize("body", [[VALID], "text", None, 3])
def test_a_body_that_is_not_an_object_is_refused(body: object) -> None:
    assert _field_error(body)[0] == "body"


def test_status_names_the_allowed_values() -> None:
    _, message = _field_error({**VALID, "status": "done"})
    assert "started, succeeded, failed, rolled_back" in message


@pytest.mark.parametrize(("value", "hint"), [
    ("yesterday", "RFC 3339"),
    ("2026-11-20T10:00:00", "offset"),
    (True, "unix seconds"),
    (NOW * 1000, "milliseconds"),
    (NOW + MAX_FUTURE_SKEW + 60, "in the future"),
    (946_684_799, "after 2000-01-01"),
    (-1, "after 2000-01-01"),
    ([NOW], "unix seconds"),
    (float("nan"), "finite"),      # Python's json module accepts NaN and Infinity
    (float("inf"), "finite"),
    (10**400, "too large"),       # an int float() cannot hold
])
def test_bad_timestamps_are_refused_with_a_hint(value: object, hint: str) -> None:
    field, message = _field_error({**VALID, "timestamp": value})
    assert field == "timestamp" and hint in message


def test_timestamps_within_the_skew_and_in_the_past_are_accepted() -> None:
    assert parse_marker({**VALID, "timestamp": NOW + MAX_FUTURE_SKEW - 1}, now=NOW).timestamp == NOW + 299
    assert parse_marker({**VALID, "timestamp": "2026-01-01T00:00:00Z"}, now=NOW).timestamp == 1_767_225_600.0
