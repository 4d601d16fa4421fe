"""Iris Messenger: a private browser messenger written in Python with Reflex."""
