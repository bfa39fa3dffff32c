"""Browser pages. For now: signing in with a link, and a page that says who you are."""
