"""Shortcuts: "Make this a pmteam task" on any message."""
