"""pmteam agents package."""
