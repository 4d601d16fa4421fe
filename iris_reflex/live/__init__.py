"""Fan-out: which browser tabs belong to which user, and pushing changes to them.

Callers notify after their service call has committed, never inside a transaction.
"""
