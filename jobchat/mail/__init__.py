"""Email: messages and notifications out over SMTP, replies back into their threads."""
