"""Local-only auxiliary storage: values a replica keeps for itself, never replicated
(the semantic index caches embeddings here by content hash)."""

from __future__ import annotations

from memmesh.crdt import InvalidArgumentError

from ._env import Env

__all__ = ["Aux"]


def _aux_key(namespace: str, key: bytes) -> bytes:
    if type(namespace) is not str or not namespace or "\x00" in namespace:
        raise InvalidArgumentError("namespace must be a non-empty str without NUL")
    if type(key) is not bytes or not key or len(key) > 400:
        raise InvalidArgumentError("aux key must be 1..400 bytes")
    return namespace.encode() + b"\x00" + key


class Aux:
    """``namespace + 0x00 + key -> value`` in the ``aux`` sub-database."""

    def __init__(self, env: Env) -> None:
        self._env = env

    def get(self, namespace: str, key: bytes) -> bytes | None:
        akey = _aux_key(namespace, key)
        with self._env.read() as txn:
            return txn.get("aux", akey)

    def put(self, namespace: str, key: bytes, value: bytes) -> None:
        akey = _aux_key(namespace, key)
        if type(value) is not bytes:
            raise InvalidArgumentError("aux value must be bytes")
        self._env.write(lambda txn: txn.put("aux", akey, value))

    def delete(self, namespace: str, key: bytes) -> bool:
        akey = _aux_key(namespace, key)
        return self._env.write(lambda txn: txn.delete("aux", akey))
