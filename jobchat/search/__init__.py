"""Full-text search over the messages a person may read."""
