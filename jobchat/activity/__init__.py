"""A conversation's history of what happened to it besides messages: ended, reopened."""
