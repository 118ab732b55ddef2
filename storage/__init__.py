"""pmteam storage: SQLModel tables, engine setup, repositories and migrations."""
