"""Tab state sealed before Reflex persists it.

Why: with several workers Reflex pickles every state of every tab into Redis (and into
``.states/*.pkl`` files in its disk mode) for as long as ``redis_token_expiration``. Those
states hold what the tab shows: message bodies, file names, sidebar previews, a login's
second-factor challenge, a TOTP secret and its QR code, fresh recovery codes. Anyone who can
read Redis or the files (a dump, a backup, a shared Redis) would read them too.

How: a state class that mixes in ``Sealed`` pickles as one AES-256-GCM ciphertext of all
of its own fields (base vars and backend ``_`` vars alike, so a field added later cannot be
forgotten). The key is derived with HKDF-SHA256 from the deployment's JWT secret under a
fixed label, so every worker of one deployment shares it and nothing else is configured;
each seal takes a fresh random nonce, and the state's full name is the associated data, so
a blob copied under another state's key is refused. Unsealing a blob that is tampered with,
sealed under another secret or not sealed at all raises, and Reflex then gives the tab a
fresh state (``BaseState._deserialize`` turns any unpickling error into a schema mismatch),
which the page's on_load fills again: the same as after the state expired.

Reflex's memory state manager (one worker, ``rxconfig.py``) never pickles a state, so there
sealing costs nothing.
"""

from __future__ import annotations

from typing import Any

from iris_reflex.sealing import (  # noqa: F401 - re-exported: tests and tools unseal states
    KEY_INFO,
    SealError,
    _cipher,
    cipher_for,
    seal,
    unseal,
)

SEALED_KEY = "_iris_sealed"  # the one entry a sealed state's pickle holds


class Sealed:
    """Mix into a Reflex state (before the state base) whose fields are private: what Reflex
    persists of it (Redis, disk) is one ciphertext. Subclasses inherit the sealing.

    Reflex's ``BaseState.__getstate__`` returns the instance's own ``__dict__`` (after
    filling in defaults); it is copied, never changed, since the live state keeps using it.
    """

    def __getstate__(self) -> dict[str, Any]:
        own: dict[str, Any] = super().__getstate__()  # type: ignore[assignment]
        fields = dict(own)
        return {SEALED_KEY: seal(fields, label=_label(self))}

    def __setstate__(self, state: dict[str, Any]) -> None:
        fields = unseal(state.get(SEALED_KEY), label=_label(self))
        super().__setstate__(fields)  # type: ignore[misc]


def _label(state: Any) -> str:
    return str(type(state).get_full_name())
