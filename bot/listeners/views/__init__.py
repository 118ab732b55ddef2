"""Modal submission listeners."""
