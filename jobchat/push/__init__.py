"""Web Push: the devices\x27 subscriptions, the server\x27s VAPID key, and sending (a channel)."""
