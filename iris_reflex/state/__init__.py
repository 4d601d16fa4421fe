"""Reflex states: thin layers that verify who is asking, call services and hold a view."""
