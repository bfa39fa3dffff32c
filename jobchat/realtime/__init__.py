"""The real-time stream: stored events pushed over WebSockets, across server processes."""
