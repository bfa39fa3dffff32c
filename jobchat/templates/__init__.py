"""Message templates with merge fields."""
