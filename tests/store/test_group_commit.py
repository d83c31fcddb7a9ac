"""Group commit on a real database (SQLite and PostgreSQL): captures waiting together share one
transaction, each in a savepoint of its own, answered only once it committed."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from tracechain.group_commit import GroupCommit
from tracechain.store.db import begin_writing, make_engine

from ..conftest import temporary_database


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database with one table, `probe`, whose column is unique (on PostgreSQL checked at the
    commit, so that a commit can fail)."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url, unique = f"sqlite:///{tmp_path / 'group.db'}", "UNIQUE"
        else:
            url, unique = stack.enter_context(temporary_database()), "UNIQUE DEFERRABLE INITIALLY DEFERRED"
        made = make_engine(url)
        stack.callback(made.dispose)
        with made.begin() as connection:
            connection.execute(text(f"CREATE TABLE probe (n INTEGER {unique})"))
        yield made


class Committer:
    """A GroupCommit over `engine` whose transactions the test can hold back and count."""

    def __init__(self, engine: Engine, max_weight: int = 100) -> None:
        self.sessions = sessionmaker(engine)
        self.lock = threading.Lock()
        self.transactions = 0
        self.group = GroupCommit(self.transaction, max_weight)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.lock, self.sessions() as session, session.begin():
            begin_writing(session)  # as Services.capturing does
            self.transactions += 1
            yield session

    def stored(self) -> list[int]:
        with self.sessions() as session:
            return sorted(session.scalars(text("SELECT n FROM probe")))

    def waiting(self) -> int:
        with self.group._condition:
            return len(self.group._waiting)


def insert(*values: int, then: Callable[[], None] = lambda: None) -> Callable[[Session], list[int]]:
    def work(session: Session) -> list[int]:
        for value in values:
            session.execute(text("INSERT INTO probe (n) VALUES (:n)"), {"n": value})
        then()
        return list(values)

    return work


def fail() -> None:
    raise ValueError("refused after writing")


def run_together(committer: Committer, works: list[Callable[[Session], list[int]]]) -> list[object]:
    """Each work from a thread of its own, all waiting (in this order) while the lock is held, then
    let go together: their answers or exceptions, in the same order."""
    answers: list[object] = [None] * len(works)

    def one(index: int) -> None:
        try:
            answers[index] = committer.group.run(works[index])
        except Exception as exc:
            answers[index] = exc

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(works))]
    with committer.lock:
        for count, thread in enumerate(threads, start=1):
            thread.start()
            deadline = time.monotonic() + 10
            while committer.waiting() < count:  # in order of arrival
                assert time.monotonic() < deadline, "the work never queued"
                time.sleep(0.01)
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_waiting_captures_commit_together_and_one_that_fails_is_rolled_back_alone(engine: Engine) -> None:
    committer = Committer(engine)
    answers = run_together(committer, [insert(1, 2), insert(3, then=fail), insert(4)])
    assert answers[0] == [1, 2] and answers[2] == [4]
    assert isinstance(answers[1], ValueError)
    assert committer.stored() == [1, 2, 4]  # the failed one's row is gone, its neighbours' kept
    assert committer.transactions == 1


def test_a_capture_sees_what_the_ones_before_it_in_the_group_wrote(engine: Engine) -> None:
    committer = Committer(engine)

    def count_before(session: Session) -> list[int]:
        return [int(session.scalar(text("SELECT count(*) FROM probe")) or 0)]

    answers = run_together(committer, [insert(1), count_before, insert(2), count_before])
    assert answers == [[1], [1], [2], [2]]


def test_nothing_of_a_group_is_seen_outside_it_before_its_commit(engine: Engine) -> None:
    """On SQLite too, where a savepoint's release would otherwise commit (`begin_writing`)."""
    committer = Committer(engine)

    def seen_outside(session: Session) -> list[int]:
        with engine.connect() as other:
            return [int(other.scalar(text("SELECT count(*) FROM probe")) or 0)]

    assert run_together(committer, [insert(1), seen_outside]) == [[1], [0]]
    assert committer.stored() == [1]


def test_a_failed_commit_fails_every_capture_of_the_group_and_stores_none(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a constraint checked at the commit: PostgreSQL's deferred unique")
    committer = Committer(engine)
    answers = run_together(committer, [insert(1), insert(2), insert(1)])  # the third breaks it at commit
    assert all(isinstance(answer, Exception) for answer in answers), answers
    assert committer.stored() == []


def test_a_group_holds_at_most_max_weight_and_the_rest_follow_in_order(engine: Engine) -> None:
    committer = Committer(engine, max_weight=2)
    answers = run_together(committer, [insert(n) for n in range(5)])
    assert answers == [[n] for n in range(5)]
    assert committer.stored() == list(range(5))
    assert committer.transactions == 3  # 2 + 2 + 1
