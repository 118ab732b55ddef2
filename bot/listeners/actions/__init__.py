"""Interactive component listeners (buttons)."""
