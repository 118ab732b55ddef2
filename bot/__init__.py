"""pmteam bot package."""
