"""manifest.yml is valid for Slack and asks for exactly what the code uses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from bot.slack.contract import (
    BOT_EVENTS,
    BOT_SCOPES,
    load_manifest,
    manifest_events,
    manifest_scopes,
)

# Slack's published schema (slackapi/manifest-schema, MIT; licence beside it), kept in the repo
# so the check runs wherever the tests run; a newer copy in ../shared wins when present.
_SHARED = Path(__file__).resolve().parent.parent.parent / "shared/slack/manifest.schema.1.0.0.json"
_VENDORED = Path(__file__).resolve().parent / "data/slack/manifest.schema.1.0.0.json"
SCHEMA = _SHARED if _SHARED.exists() else _VENDORED


def test_manifest_scopes_are_exactly_the_code_scopes() -> None:
    assert manifest_scopes(load_manifest()) == BOT_SCOPES


def test_manifest_events_are_exactly_the_code_events() -> None:
    assert manifest_events(load_manifest()) == BOT_EVENTS


def test_manifest_has_the_surfaces_pmteam_serves() -> None:
    manifest = load_manifest()
    features = manifest["features"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert [c["command"] for c in features["slash_commands"]] == ["/pm"]
    assert features["assistant_view"]["assistant_description"]
    assert [(s["type"], s["callback_id"]) for s in features["shortcuts"]] == [
        ("message", "make_pmteam_task")
    ]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True


def test_manifest_validates_against_slacks_schema() -> None:
    if not SCHEMA.exists():
        pytest.skip(f"Slack's manifest schema is not at {SCHEMA}")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(load_manifest(), schema)
