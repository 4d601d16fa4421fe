"""Domain services: plain functions taking a ``Session``; every rule of Iris lives here.

Nothing in this package imports Reflex or FastAPI. Each action owns its transaction and
commits it; callers notify live clients only after the call returns.
"""
