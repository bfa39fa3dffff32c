"""Background jobs: a table of work written with the change that causes it, and the worker."""
