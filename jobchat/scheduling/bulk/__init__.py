"""Bulk messages: one message, rendered for each candidate, into each one's own chat."""
