"""Liveness and readiness, for orchestrators and for people: is the process up, and can it do its
work (database, node, the chain its records are on, workers that beat, how far behind)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tracechain.api.deps import ServicesDep
from tracechain.services import Services
from tracechain.store import queries
from tracechain.supervision import STALE_AFTER_S, one_line

router = APIRouter(tags=["health"])

NODE_TIMEOUT_S = 3.0


@router.get("/health")
def health() -> dict[str, str]:
    """The process is alive and answers (nothing else is checked: see /ready)."""
    return {"status": "alive"}


@router.get("/ready", responses={503: {"description": "Not ready: `checks` says what is wrong"}})
def ready(services: ServicesDep) -> JSONResponse:
    """Whether the service can do its work: the database answers, the node answers and is the chain
    the records are on, the workers (in this process or in `tracechain work`) beat; with the
    indexer's lag, the outbox's backlog and the age of the oldest capture not yet on chain."""
    checks: dict[str, dict[str, Any]] = {}
    tip = _check_node(services, checks)
    _check_database(services, checks, tip)
    ok = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ok else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


def _check_node(services: Services, checks: dict[str, dict[str, Any]]) -> int | None:
    try:
        tip = services.chain.tip_within(NODE_TIMEOUT_S)
    except Exception as exc:
        checks["node"] = {"ok": False, "error": one_line(exc)}
        checks["chain"] = {"ok": False, "error": "the node does not answer"}
        return None
    checks["node"] = {"ok": True, "block": tip}
    try:
        if services.chain_guard is not None:
            services.chain_guard.verify()
        checks["chain"] = {
            "ok": True,
            "chainId": services.chain.chain_id,
            "registry": services.registry.address,
        }
    except Exception as exc:
        checks["chain"] = {"ok": False, "error": str(exc)}
    return tip


def _check_database(services: Services, checks: dict[str, dict[str, Any]], tip: int | None) -> None:
    try:
        with services.sessions() as session:
            beats = {row.name: row for row in queries.heartbeats(session)}
            backlog = queries.backlog(session)
    except Exception as exc:
        checks["database"] = {"ok": False, "error": one_line(exc)}
        checks["workers"] = {"ok": False, "error": "unknown: the database does not answer"}
        return
    checks["database"] = {"ok": True}
    now = datetime.now(UTC)
    expected = ["submitter", "indexer", *(["settler"] if services.settlement is not None else [])]
    workers: dict[str, Any] = {}
    for name in expected:
        row = beats.get(name)
        if row is None:
            workers[name] = {
                "ok": False,
                "error": "never ran: start `tracechain work`, or serve with TRACECHAIN_RUN_WORKERS=true",
            }
            continue
        age = (now - row.beat_at.astimezone(UTC)).total_seconds()
        problem = f"no heartbeat for {age:.0f} s" if age > STALE_AFTER_S else row.error
        workers[name] = {"ok": problem is None, "process": row.process, "beatSecondsAgo": round(age, 1)}
        if problem:
            workers[name]["error"] = problem
    checks["workers"] = {"ok": all(w["ok"] for w in workers.values()), **workers}
    indexed = beats["indexer"].indexed_block if "indexer" in beats else None
    checks["indexer"] = {
        "ok": True,
        "indexedBlock": indexed,
        "lagBlocks": None if tip is None or indexed is None else max(tip - indexed, 0),
    }
    oldest = backlog.oldest_pending_since
    checks["outbox"] = {
        "ok": True,
        "queuedRecords": backlog.queued,
        "sentRecords": backlog.sent,
        "oldestPendingSeconds": None
        if oldest is None
        else round((now - oldest.astimezone(UTC)).total_seconds(), 1),
    }
