"""Engine, sessions and schema migrations for SQLite (the default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):  # type: ignore[no-untyped-def]
            cursor = connection.cursor()
            # WAL lets the API read while the submitter and indexer write; foreign keys are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # Enough connections for the request threads (each holds at most one at a time) and the workers;
    # a request that still finds none gets a 503 after pool_timeout, not a 30 s wait.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30, pool_timeout=10)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic), on the engine's database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back whole on any error."""
    with sessions() as session, session.begin():
        yield session


class SharedLock(IntEnum):
    """Locks the processes sharing one PostgreSQL database take (advisory locks, by these keys)."""

    OUTBOX = 0x7472_0001
    """Allocating the relayer's nonces: the API (role grants, orders) and the worker both send."""
    CAPTURE = 0x7472_0002
    """Signing over subjects' heads: each capture reads the heads the one before it left."""
    WORKERS = 0x7472_0003
    """Running the submitter, indexer and settler: one process per database does."""
    FEED = 0x7472_0004
    """Appending to the subscriptions' feed (`EventConfirmation`): its seq must grow in commit
    order, so its writers (the indexer, and a capture of events with nothing to record on chain)
    take turns, each until it commits."""


def hold(session: Session, lock: SharedLock) -> None:
    """Wait for `lock` and hold it until the session's transaction ends, across processes.

    PostgreSQL only: a SQLite database is used by one process (`tracechain work` refuses it), whose
    threads the caller serialises with a threading lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(lock)})


def begin_writing(session: Session) -> None:
    """On SQLite, begin the session's transaction as the database's writer now (BEGIN IMMEDIATE,
    waiting for the writer before, as long as the busy timeout allows); elsewhere nothing.

    pysqlite begins a transaction only before a write, and not for a SAVEPOINT: a savepoint taken
    first begins one of its own, which its release commits, and one that reads and then writes
    while another connection has written meanwhile fails at once ("database is locked", WAL's
    stale snapshot). A transaction that began as the writer has neither problem: its savepoints
    nest in it and it commits once. Call it before any statement of the transaction."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))


def claim(engine: Engine, lock: SharedLock) -> Connection | None:
    """A connection of its own holding `lock` until it is closed (a role a process keeps for its
    life), or None if another connection holds it. PostgreSQL only."""
    assert engine.dialect.name == "postgresql", "advisory locks are PostgreSQL's"
    connection = engine.connect()
    if connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": int(lock)}):
        connection.commit()  # the lock is the session's; no transaction is left open
        # Out of the pool: closing it then ends the session, and so the lock, rather than handing
        # a connection that still holds it to the next checkout.
        connection.detach()
        return connection
    connection.close()
    return None


def ping(connection: Connection) -> None:
    """One round trip on the connection; raises if it is lost, and with it any lock `claim` took on it."""
    connection.execute(text("SELECT 1"))
