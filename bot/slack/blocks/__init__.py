"""Block Kit builders, one module per surface: pure functions from domain data to blocks."""
