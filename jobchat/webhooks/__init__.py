"""Outgoing webhooks: events signed per Standard Webhooks, POSTed to an integrator's URL."""
