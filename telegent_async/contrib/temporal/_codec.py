"""`EncryptionCodec`: Temporal's payload codec mechanism, with AES-256-GCM.

Workflow history keeps every activity input, result, signal and heartbeat. A port-in's submit
and update carry the subscriber's account number and PIN, so they must never sit there in
clear. A payload codec runs in the client (the worker's and the starter's) after the data
converter: history then holds only ciphertext, which the Temporal server cannot read.

The format is the one of Temporal's encryption samples (`binary/encrypted`, the key's ID in
the metadata, a 12-byte nonce before the ciphertext), so the samples' codec server can show
the payloads in the Temporal UI to whoever holds the key. Payloads written by another key ID
decrypt with `previous_keys` (rotation: histories last as long as the port-in); payloads that
are not encrypted (written before the codec was enabled) pass through as they are.
The key ID is the AES-GCM associated data, so a payload cannot be passed off as another key's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

__all__ = ["EncryptionCodec"]

ENCODING: Final = b"binary/encrypted"
KEY_ID: Final = "encryption-key-id"
_NONCE = 12


def _cipher(key_id: object, key: object) -> AESGCM:
    if not isinstance(key_id, str) or not key_id:
        raise ValueError("a key ID must be a non-empty str")
    if not isinstance(key, bytes) or len(key) != 32:
        raise ValueError(f"key {key_id!r} must be 32 bytes (AES-256), e.g. os.urandom(32)")
    return AESGCM(key)


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with AES-256-GCM under `key`; decrypts with it or a previous key.

    Give the same codec to every Temporal client of the application (the worker's and every
    starter's): `Client.connect(..., data_converter=dataclasses.replace(
    DataConverter.default, payload_codec=EncryptionCodec(key)))`. Failure messages and
    stack traces stay in clear (Temporal encodes only payloads): the SDK's errors never
    quote a secret.

    Args:
        key: 32 random bytes (`os.urandom(32)`), kept in a secret store, never in code.
        key_id: The key's name, written beside each payload so a later key can be rotated in.
        previous_keys: Older keys by ID, to read payloads written before a rotation.
    """

    def __init__(
        self,
        key: bytes,
        *,
        key_id: str = "telegent",
        previous_keys: Mapping[str, bytes] | None = None,
    ) -> None:
        self._key_id = key_id
        self._cipher = _cipher(key_id, key)
        self._ciphers = {name: _cipher(name, old) for name, old in (previous_keys or {}).items()}
        self._ciphers[key_id] = self._cipher

    def __repr__(self) -> str:
        return f"<EncryptionCodec key_id={self._key_id!r}>"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each payload, serialized whole (metadata included) and encrypted.

        Args:
            payloads: What the data converter made of the values.
        """
        aad = self._key_id.encode()
        encoded = []
        for payload in payloads:
            nonce = os.urandom(_NONCE)
            data = nonce + self._cipher.encrypt(nonce, payload.SerializeToString(), aad)
            encoded.append(Payload(metadata={"encoding": ENCODING, KEY_ID: aad}, data=data))
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Each encrypted payload decrypted; any other payload as it is.

        Args:
            payloads: Payloads as read from history.

        Raises:
            ValueError: A payload encrypted under an unknown key ID, or altered.
        """
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise ValueError(f"payload encrypted under unknown key ID {key_id!r}")
            nonce, sealed = payload.data[:_NONCE], payload.data[_NONCE:]
            try:
                plain = cipher.decrypt(nonce, sealed, key_id.encode())
            except InvalidTag as exc:  # the wrong key, or altered data
                raise ValueError(f"payload under key ID {key_id!r} does not decrypt") from exc
            decoded.append(Payload.FromString(plain))
        return decoded
