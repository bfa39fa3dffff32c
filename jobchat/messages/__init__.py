"""Messages: sending, reading history, deleting, and per-recipient delivery records."""
