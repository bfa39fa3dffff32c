"""Attachments: files uploaded into a conversation, checked by content, kept in a storage."""
