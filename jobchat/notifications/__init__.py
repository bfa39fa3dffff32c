"""Who is told of a new message, when, and how: push, email or text (the ladder)."""
