"""pmteam storage package."""
