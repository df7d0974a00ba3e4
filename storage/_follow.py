"""``JournalFollower``: one cursor over a replica's change journal, reset included.

Everything derived from a replica (a watcher's events, the semantic index, an adapter's
view) follows the journal the same way: read a page of changes after a cursor, handle
the memories it names, move the cursor past the page only once they are handled (so a
crash re-reads it: at least once), and when the cursor fell off the truncated journal
(``ChangeBatch.reset``) or lies beyond its end (a cursor kept across a restore from an
older backup), rebuild from the replica's current state. The rebuild is safe
because the journal position is read *before* the rebuild reads anything: a change
racing with it is replayed afterwards, never lost. This is the informer pattern of
Kubernetes (list, then watch from the list's resource version) on memmesh's journal.
A source that offers commit marks (:class:`CommitProbe`, a ``Replica`` does) lets
:meth:`JournalFollower.catch_up` skip the journal read when nothing was committed
since its last catch-up, by anyone: one ``mdb_env_info`` call instead of a read
transaction (the mark is taken *before* catching up, so a racing commit moves it).
The follower holds no more than one page and is not thread-safe (one owner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from memmesh.crdt import InvalidArgumentError

from ._env import CommitMark
from ._records import Change, ChangeBatch

__all__ = ["CommitProbe", "FollowPage", "JournalFollower", "JournalSource"]


class JournalSource(Protocol):
    """What a follower reads: a :class:`~memmesh.storage.Replica` is one."""

    def journal_seq(self) -> int: ...

    def changes_since(self, seq: int, limit: int = ...) -> ChangeBatch: ...


@runtime_checkable
class CommitProbe(Protocol):
    """A source that can tell cheaply whether anything was committed since a read
    (``Replica.last_commit`` / ``Replica.read_commit``; None: cannot be told, read)."""

    def last_commit(self) -> CommitMark | None: ...

    def read_commit(self) -> CommitMark | None: ...


@dataclass(frozen=True, slots=True)
class FollowPage:
    """One step of a follower: the changes after its cursor, up to ``cursor``.

    ``reset``: the changes after the old cursor are gone (or the follower had none yet);
    rebuild from the replica's current state, then follow from ``cursor`` (read before
    the rebuild). A reset page carries no changes.
    """

    cursor: int
    changes: tuple[Change, ...]
    reset: bool

    def memory_ids(self) -> list[str]:
        """The memories the page names, each once, in the order of their last change."""
        last = {change.memory_id: i for i, change in enumerate(self.changes)}
        return sorted(last, key=last.__getitem__)


class JournalFollower:
    """Follows ``source``'s journal from ``since`` (None: start with a reset page)."""

    def __init__(self, source: JournalSource, since: int | None = None, *,
                 page: int = 1000) -> None:
        if since is not None and (type(since) is not int or since < 0):
            raise InvalidArgumentError("since must be a journal cursor (an int >= 0) or None")
        if type(page) is not int or page < 1:
            raise InvalidArgumentError("page must be an int >= 1")
        self.source = source
        self.page = page
        self._cursor = since
        self._checked = False  # the cursor was compared with the journal's end once
        self._probe = source if isinstance(source, CommitProbe) else None
        self._synced: CommitMark | None = None  # every commit up to here was handled

    @property
    def cursor(self) -> int | None:
        """Every change up to here was handled (None: nothing yet, a reset is due)."""
        return self._cursor

    def read(self) -> FollowPage | None:
        """The next page after the cursor (None: caught up). The cursor stays until
        :meth:`advance`, so a page that was not handled is read again."""
        if self._cursor is None or (not self._checked
                                    and self.source.journal_seq() < self._cursor):
            # no cursor yet, or one from beyond this journal's end (a directory restored
            # from an older backup): what happened since cannot be told, so rebuild
            return FollowPage(self.source.journal_seq(), (), True)
        self._checked = True
        batch = self.source.changes_since(self._cursor, limit=self.page)
        if batch.reset:
            return FollowPage(self.source.journal_seq(), (), True)
        if not batch.changes or batch.seq <= self._cursor:
            return None
        return FollowPage(batch.seq, batch.changes, False)

    def advance(self, page: FollowPage) -> None:
        """Mark ``page`` handled: the next :meth:`read` starts after it."""
        self._cursor = page.cursor

    def catch_up(self, changed: Callable[[list[str]], object],
                 rebuild: Callable[[], object]) -> int:
        """Handle every page up to the journal's end: ``rebuild()`` on a reset,
        ``changed(memory_ids)`` otherwise (each id once per page); return the pages
        handled. If a callback raises, the cursor stays before that page.

        With a :class:`CommitProbe` source, a catch-up when nothing was committed since
        the last one returned reads no journal and opens no read transaction."""
        probe = self._probe
        if probe is not None and self._synced is not None \
                and probe.last_commit() == self._synced:
            return 0
        synced = None if probe is None else probe.read_commit()  # before reading anything
        pages = 0
        while (page := self.read()) is not None:
            if page.reset:
                rebuild()
            else:
                changed(page.memory_ids())
            self.advance(page)
            pages += 1
        self._synced = synced
        return pages
