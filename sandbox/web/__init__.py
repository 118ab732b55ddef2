"""The sandbox's web page: a local Slack workspace in the browser, served by the fake Slack."""

from sandbox.web.page import ModelNote, SandboxPage, attach_page

__all__ = ["ModelNote", "SandboxPage", "attach_page"]
