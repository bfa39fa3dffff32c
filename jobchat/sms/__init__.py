"""SMS: texts out through a provider (Twilio), replies and delivery statuses back by webhook."""
