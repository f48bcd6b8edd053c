"""Investigation handlers."""
