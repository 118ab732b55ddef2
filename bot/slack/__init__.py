"""Slack's wire formats without Bolt: Block Kit, posting, streaming, reactions, the client."""
