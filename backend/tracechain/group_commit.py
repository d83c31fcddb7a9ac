"""Group commit: the captures waiting for the capture lock run in one transaction, one commit.

Captures run one at a time (each signs over the heads the one before it left), so while one holds
the capture lock the others queue up behind it. Rather than each then taking the lock, opening a
transaction, reading the roles and parties, writing its rows and committing in turn, the first to
find the lock free (the leader) takes every capture waiting at that moment and runs them, in the
order they arrived, in one transaction; its followers wait for their answers. Each capture runs in
a savepoint of its own: one that fails (a refused document, a conflict) is rolled back alone and
its error goes to its caller, the others commit. Nothing is answered before the commit: if the
commit fails, every capture of the group gets that error and none of them was stored.

The order within a group is the order of arrival, and each capture sees what the ones before it in
the group wrote (the same transaction), exactly as if they had committed one after the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass
class _Waiting(Generic[T]):
    """A capture waiting for a leader to run it, and then its answer."""

    work: Callable[[Session], T]
    weight: int
    result: T | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class GroupCommit:
    """Runs `work(session)` of concurrent callers in shared transactions, one at a time.

    `transaction()` opens the transaction a group runs in (and takes the capture lock: a group is
    one capture as far as everything else is concerned); a group holds at most `max_weight` (the
    events of its documents), except that a single heavier capture runs alone."""

    transaction: Callable[[], AbstractContextManager[Session]]
    max_weight: int
    _condition: threading.Condition = field(default_factory=threading.Condition)
    _waiting: list[_Waiting[Any]] = field(default_factory=list)
    _leading: bool = False

    def run(self, work: Callable[[Session], T], weight: int = 1) -> T:
        """`work`'s answer once the transaction it ran in has committed; its exception if it
        raised (its savepoint rolled back), or the transaction's if that failed (nothing stored)."""
        mine: _Waiting[T] = _Waiting(work, weight)
        with self._condition:
            self._waiting.append(mine)
        while True:
            with self._condition:
                while self._leading and not mine.done:
                    self._condition.wait()
                if mine.done:
                    break
                self._leading = True  # its turn: it leads the captures waiting, oldest first
            try:
                self._lead()
            finally:
                with self._condition:
                    self._leading = False
                    self._condition.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    @property
    def waiting(self) -> int:
        """Captures waiting for their turn (those of the group running not counted)."""
        with self._condition:
            return len(self._waiting)

    def _take_group(self) -> list[_Waiting[Any]]:
        """The longest run of waiting captures, oldest first, within max_weight (at least one)."""
        taken, weight = 0, 0
        for waiting in self._waiting:
            if taken and weight + waiting.weight > self.max_weight:
                break
            taken, weight = taken + 1, weight + waiting.weight
        group, self._waiting[:taken] = self._waiting[:taken], []
        return group

    def _lead(self) -> None:
        """Runs the captures waiting once the transaction is open (the lock taken: those that came
        meanwhile join too), each in a savepoint, and commits them together."""
        group: list[_Waiting[Any]] = []
        try:
            with self.transaction() as session:
                with self._condition:
                    group = self._take_group()
                for waiting in group:
                    try:
                        with session.begin_nested():
                            waiting.result = waiting.work(session)
                    except Exception as exc:  # its caller's to handle, as if it had run alone
                        waiting.error = exc
        except BaseException as exc:  # the transaction failed, the commit included: none is stored
            if not group:
                with self._condition:
                    group = self._take_group()
            for waiting in group:
                waiting.result, waiting.error = None, exc
            if not isinstance(exc, Exception):
                raise
        finally:
            for waiting in group:
                waiting.done = True
