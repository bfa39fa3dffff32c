"""Credentials: integration keys, user tokens, one-time sign-in links and browser sessions."""
