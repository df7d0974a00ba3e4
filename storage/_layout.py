"""The on-disk layout version of a replica, and the one upgrade it has needed so far.

Layout 2 changed two indexes that are pure functions of the key states (:mod:`._indexes`):
the ``origin`` index carries the key inside its index key, and the ``scope`` sub-database
gained the peer-scope rows (tag ``S``) of digest repair. A replica written by layout 1 is
upgraded when it is opened: both are rebuilt from the stored states in one transaction
(so a crash leaves either layout, never a mix), and ``meta["layout"]`` records the
version. A new, empty replica starts at the current one.
"""

from __future__ import annotations

from ._env import Env, Txn
from ._indexes import PEER_TAG, add_index_rows
from ._keycodec import decode

__all__ = ["LAYOUT", "upgrade"]

LAYOUT = 2
_KEY = b"layout"


def upgrade(env: Env) -> bool:
    """Bring the replica in ``env`` to :data:`LAYOUT`; True if it had to be rebuilt."""
    with env.read() as txn:
        if txn.counter(_KEY) >= LAYOUT:
            return False
    return env.write(_rebuild)


def _rebuild(txn: Txn) -> bool:
    if txn.counter(_KEY) >= LAYOUT:  # another process did it meanwhile
        return False
    for db, prefix in (("origin", b""), ("scope", PEER_TAG)):
        for key in [k for k, _ in txn.prefix(db, prefix)]:
            txn.delete(db, key)
    rows: dict[str, list[tuple[bytes, bytes]]] = {"scope": [], "expiry": [], "conflict": [],
                                                  "origin": []}
    rebuilt = False
    for skey, raw in txn.prefix("state", b""):
        state = decode(raw, check_canonical=False)
        add_index_rows(skey[1:].decode(), state, rows)
        rebuilt = True
    txn.put_rows("origin", sorted(rows["origin"]))
    txn.put_rows("scope", sorted(r for r in rows["scope"] if r[0].startswith(PEER_TAG)))
    txn.set_counter(_KEY, LAYOUT)
    return rebuilt
