"""Sealing: data that leaves the process through Redis (or a file) as AES-256-GCM ciphertext.

Tab state (``state.sealed``) and changes relayed to another worker (``live.relay``) go
through Redis, which holds them in the clear for anyone who can read it or a dump of it, and
which anyone who can write to it could use to hand a worker forged data (a pickle, which
would run code). A sealed blob is encrypted under a key derived with HKDF-SHA256 from the
deployment's JWT secret under a fixed label, so every worker of one deployment shares it and
nothing else is configured; each seal takes a fresh random nonce, and a label (a state's full
name, a channel's purpose) is the associated data, so a blob is refused under any other
label. Unsealing a blob that is tampered with, sealed under another secret or not sealed at
all raises ``SealError`` before anything is unpickled.
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


class SealError(ValueError):
    """A blob that cannot be trusted: tampered, foreign, or never sealed."""


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
    """``fields`` pickled and encrypted, bound to ``label``."""
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
