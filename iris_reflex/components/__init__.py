"""Reusable UI pieces: layout only, no rules."""
