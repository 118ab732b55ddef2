"""Pytest fixtures for the sandbox fakes: `fake_slack` and `fake_model`, on free loopback ports."""

from sandbox.model.pytest_fixtures import fake_model
from sandbox.slack.pytest_fixtures import fake_slack

__all__ = ["fake_model", "fake_slack"]
