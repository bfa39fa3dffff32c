"""Web Push: the devices' subscriptions, the server's VAPID key, and sending (a channel)."""
