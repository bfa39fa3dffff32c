"""Conversations: their kinds and contexts, their members and member read state."""
