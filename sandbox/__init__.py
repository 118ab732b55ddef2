"""pmteam sandbox package."""
