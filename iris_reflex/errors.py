"""Domain errors raised by services.

The JSON API maps them to HTTP status codes and the Reflex state shows their message in a
toast. Messages are written for the person using Iris: they are shown as they are.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``message`` is safe to show to the user."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    """The input breaks a rule (too short, wrong format, ...)."""

    status_code = 422


class NotAuthenticated(DomainError):
    """No valid credentials: missing, expired, tampered or revoked token, or a wrong password."""

    status_code = 401


class Forbidden(DomainError):
    """The actor is known but may not do this."""

    status_code = 403


class NotFound(DomainError):
    """Missing, or not the actor's to see: one error for both, so nothing leaks existence."""

    status_code = 404


class Conflict(DomainError):
    """The action clashes with existing data (a taken username, a duplicate request)."""

    status_code = 409


class TooLarge(DomainError):
    """An upload or a body over a configured limit."""

    status_code = 413


class Throttled(DomainError):
    """Too many attempts; ``retry_after`` says when trying again makes sense."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SecondFactorRequired(DomainError):
    """The password was right, and the account asks for a second step too.

    Not a session: ``challenge`` is a short-lived, single-purpose token that, with a code
    (``auth.finish_login``), opens one. A caller that does not know about two-step sign-in
    simply fails here, as for a wrong password: it can never open a session by mistake.
    """

    status_code = 401

    def __init__(self, message: str, *, challenge: str, expires_in: int, methods: tuple[str, ...]):
        super().__init__(message)
        self.challenge = challenge
        self.expires_in = expires_in
        self.methods = methods
