"""What a replica checks writes against: the authority, the credentials it has admitted,
the revocations it has seen, and a cache of verified signatures.

``admit`` checks a credential's issuer signature once and keeps it by id (a relay ships
the credentials of the writes it passes on). ``check_write`` is the whole write rule
for one signed write of an origin: the credential is known, was valid at the write's
stamp, was not revoked at or before it, and grants write on the memory's scope and the
role and actor the write claims. ``verify_root`` checks one Ed25519 signature over a
commit's Merkle root and remembers the success (an LRU of verified roots), so a bulk
sync verifies each commit once, not each memory. Thread-safe: gossip applies from
worker threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator

from ._credential import Credential
from ._errors import CredentialError
from ._public import AuthorityPublic
from ._revocation import Revocation
from ._signed import verify_signature

__all__ = ["TrustStore"]

_MAX_CREDENTIALS = 65_536
_MAX_GRANT_CACHE = 65_536
_UNSEEN = "\x00unseen"


class TrustStore:
    """See the module doc. ``roots``: how many verified commit roots to remember."""

    __slots__ = ("_creds", "_grants", "_lock", "_revoked", "_roots", "_roots_max",
                 "authority", "verified")

    def __init__(self, authority: AuthorityPublic, *, roots: int = 65_536) -> None:
        self.authority = authority
        self._creds: dict[bytes, Credential] = {}
        self._revoked: dict[bytes, Revocation] = {}
        self._roots: OrderedDict[bytes, None] = OrderedDict()
        self._roots_max = roots
        #: (credential id, scope, role, actor) -> may_write's answer (credentials are
        #: immutable, so the answer is too)
        self._grants: dict[tuple[object, ...], str | None] = {}
        self._lock = threading.Lock()
        self.verified = 0  # signatures actually verified (the rest came from the cache)

    # -- credentials ------------------------------------------------------------------

    def admit(self, data: bytes | Credential) -> Credential:
        """The credential in ``data``, checked against the authority once and kept;
        :class:`CredentialError` (or ``DecodeError``) if it is not one of ours."""
        cred = data if isinstance(data, Credential) else Credential.from_bytes(data)
        known = self._creds.get(cred.id)
        if known is not None:
            return known
        cred.verify(self.authority)
        with self._lock:
            if len(self._creds) >= _MAX_CREDENTIALS and cred.id not in self._creds:
                raise CredentialError(f"trust store holds {_MAX_CREDENTIALS} credentials")
            self._creds[cred.id] = cred
        return cred

    def credential(self, credential_id: bytes) -> Credential | None:
        return self._creds.get(credential_id)

    def credentials(self) -> Iterator[Credential]:
        return iter(list(self._creds.values()))

    # -- revocations ------------------------------------------------------------------

    def add_revocation(self, data: bytes | Revocation) -> bool:
        """Check and keep a revocation; True if it is new or earlier than the one held
        (the earliest revocation of a credential wins)."""
        rev = data if isinstance(data, Revocation) else Revocation.from_bytes(data)
        rev.verify(self.authority)
        with self._lock:
            held = self._revoked.get(rev.credential_id)
            if held is not None and (held.revoked_at_ms, held.raw) <= (rev.revoked_at_ms,
                                                                       rev.raw):
                return False
            self._revoked[rev.credential_id] = rev
        return True

    def revoked_at(self, credential_id: bytes) -> int | None:
        rev = self._revoked.get(credential_id)
        return None if rev is None else rev.revoked_at_ms

    def revocations(self) -> Iterator[Revocation]:
        return iter(list(self._revoked.values()))

    # -- the write rule ---------------------------------------------------------------

    def check_write(self, credential_id: bytes, *, replica_id: str, app_id: str | None,
                    user_id: str | None, agent_id: str | None, run_id: str | None,
                    role: str | None, actor: str | None, stamp_ms: int) -> str | None:
        """None if the write is allowed; else ``"<reason>: <detail>"`` with reason one of
        ``unknown-credential``, ``wrong-replica``, ``expired``, ``revoked``, ``no-grant``."""
        cred = self._creds.get(credential_id)
        if cred is None:
            return f"unknown-credential: {credential_id.hex()} was never shown to this replica"
        if cred.replica_id != replica_id:
            return (f"wrong-replica: credential {credential_id.hex()} is {cred.replica_id!r}'s,"
                    f" not {replica_id!r}'s")
        if not cred.valid_at(stamp_ms):
            return (f"expired: {replica_id!r}'s credential is valid {cred.not_before_ms} .. "
                    f"{cred.expires_ms} ms, the write is stamped {stamp_ms}")
        revoked = self.revoked_at(credential_id)
        if revoked is not None and stamp_ms >= revoked:
            return (f"revoked: {replica_id!r}'s credential was revoked at {revoked} ms, the "
                    f"write is stamped {stamp_ms}")
        scope = (credential_id, app_id, user_id, agent_id, run_id, role, actor)
        why = self._grants.get(scope, _UNSEEN)
        if why is _UNSEEN:  # a bulk sync asks this for every memory of a few scopes
            if len(self._grants) >= _MAX_GRANT_CACHE:
                self._grants.clear()
            why = self._grants[scope] = cred.may_write(app_id, user_id, agent_id, run_id,
                                                       role, actor)
        return None if why is None else f"no-grant: {replica_id!r}: {why}"

    # -- signatures -------------------------------------------------------------------

    def verify_root(self, credential_id: bytes, root: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is the credential's signature of ``root`` (cached)."""
        token = credential_id + root + signature
        with self._lock:
            if token in self._roots:
                self._roots.move_to_end(token)
                return True
        cred = self._creds.get(credential_id)
        if cred is None or not verify_signature(cred.public_key, signature, root):
            return False
        with self._lock:
            self.verified += 1
            self._roots[token] = None
            while len(self._roots) > self._roots_max:
                self._roots.popitem(last=False)
        return True
