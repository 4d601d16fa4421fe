"""Scheduled jobs: the expiry sweep."""
