"""The use cases: each takes what it needs, opens its own transaction and knows no Bolt types."""
