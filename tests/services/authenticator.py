"""A software WebAuthn authenticator and client for tests: it answers the options Iris
hands out the way a browser with a platform authenticator would (``none`` attestation, an
ES256 key, a discoverable credential), so services and API routes are tested without a
browser. Chromium's own virtual authenticator is used by the end-to-end tests."""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

UP, UV, AT = 0x01, 0x04, 0x40


def _b64(data: bytes) -> str:
    return bytes_to_base64url(data)


@dataclass
class Credential:
    """One passkey held by the authenticator."""

    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class Authenticator:
    """Answers ``create`` and ``get`` options for pages at ``origin``."""

    origin: str
    user_verified: bool = True
    counts: bool = True  # whether the signature counter grows (some authenticators keep 0)
    credentials: list[Credential] = field(default_factory=list)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin or self.origin}
        ).encode()

    def _flags(self) -> int:
        return UP | (UV if self.user_verified else 0)

    def create(
        self, options: dict[str, Any], *, origin: str | None = None, reuse: Credential | None = None
    ) -> dict[str, Any]:
        """``navigator.credentials.create({publicKey: options})`` as JSON; ``reuse`` answers
        with an existing credential (what ``excludeCredentials`` stops a real browser doing)."""
        rp_id = options["rp"]["id"]
        key = reuse.key if reuse else ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        cred = reuse or Credential(
            id=secrets.token_bytes(16),
            key=key,
            rp_id=rp_id,
            user_handle=base64url_to_bytes(options["user"]["id"]),
        )
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags() | AT])
            + struct.pack(">I", 0)
            + bytes(16)
            + struct.pack(">H", len(cred.id))
            + cred.id
            + cose
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        if reuse is None:
            self.credentials.append(cred)
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return {
            "id": _b64(cred.id),
            "rawId": _b64(cred.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": _b64(client_data),
                "attestationObject": _b64(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential: Credential | None = None,
        origin: str | None = None,
    ) -> dict[str, Any]:
        """``navigator.credentials.get({publicKey: options})`` as JSON, with ``credential``
        (default: the newest one for the RP, among those allowed)."""
        allowed = {c["id"] for c in options.get("allowCredentials", [])}
        if credential is None:
            usable = [
                c
                for c in self.credentials
                if c.rp_id == options["rpId"] and (not allowed or _b64(c.id) in allowed)
            ]
            credential = usable[-1]
        if self.counts:
            credential.sign_count += 1
        auth_data = (
            hashlib.sha256(credential.rp_id.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", credential.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = credential.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": _b64(credential.id),
            "rawId": _b64(credential.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": _b64(client_data),
                "authenticatorData": _b64(auth_data),
                "signature": _b64(signature),
                "userHandle": _b64(credential.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
