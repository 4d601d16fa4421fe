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

import functools
import os
import pickle  # noqa: S403 - only ever loads what this module sealed and authenticated
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from iris_reflex.settings import get_settings

KEY_INFO = b"iris tab-state seal v1"  # HKDF label: this key is for sealing state, nothing else
VERSION = b"\x01"
NONCE_BYTES = 12
TAG_BYTES = 16
SEALED_KEY = "_iris_sealed"  # the one entry a sealed state's pickle holds


class SealError(ValueError):
    """A persisted state that cannot be trusted: tampered, foreign, or never sealed."""


@functools.lru_cache(maxsize=4)
def cipher_for(secret: str) -> AESGCM:
    """The sealing cipher of the deployment whose JWT secret is ``secret``."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO)
    return AESGCM(key.derive(secret.encode()))


@functools.cache
def _cipher() -> AESGCM:
    """This deployment's sealing cipher (the JWT secret is fixed for a process's life: it
    signs every session too)."""
    return cipher_for(get_settings().resolved_jwt_secret())


def seal(fields: dict[str, Any], *, label: str) -> bytes:
    """``fields`` pickled and encrypted, bound to ``label`` (a state's full name)."""
    nonce = os.urandom(NONCE_BYTES)
    plain = pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)
    return VERSION + nonce + _cipher().encrypt(nonce, plain, label.encode())


def unseal(blob: Any, *, label: str, cipher: AESGCM | None = None) -> dict[str, Any]:
    """The fields ``seal`` was given; raises ``SealError`` unless ``blob`` was sealed by
    this deployment (or ``cipher``'s) for ``label`` and is unchanged."""
    if not isinstance(blob, bytes) or len(blob) < 1 + NONCE_BYTES + TAG_BYTES:
        raise SealError(f"{label}: no sealed state")
    if blob[:1] != VERSION:
        raise SealError(f"{label}: unknown seal version {blob[:1]!r}")
    nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        plain = (cipher or _cipher()).decrypt(nonce, body, label.encode())
    except InvalidTag as exc:
        raise SealError(f"{label}: the sealed state is not authentic") from exc
    fields = pickle.loads(plain)  # noqa: S301 - authenticated above: sealed by this deployment
    if not isinstance(fields, dict):
        raise SealError(f"{label}: the sealed state is not a field dict")
    return fields


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
