"""store.db.claim: a role one connection holds across processes, given up when it closes."""

from __future__ import annotations

from tracechain.store.db import SharedLock, claim, make_engine


def test_a_claim_is_exclusive_and_free_again_once_its_connection_closes(postgres_url: str) -> None:
    first, second = make_engine(postgres_url), make_engine(postgres_url)  # as two processes
    try:
        held = claim(first, SharedLock.WORKERS)
        assert held is not None
        assert claim(second, SharedLock.WORKERS) is None
        held.close()  # no dispose: the pool must not keep the session, and the lock, alive
        again = claim(second, SharedLock.WORKERS)
        assert again is not None
        again.close()
    finally:
        first.dispose()
        second.dispose()
