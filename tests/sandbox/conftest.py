"""The `browser` marker: tests that drive Chromium (the slow ones; they run in every suite)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives headless Chromium through the sandbox page (slow)"
    )
