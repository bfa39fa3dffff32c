"""The numbered event stream that the real-time bus and the notification worker read."""
