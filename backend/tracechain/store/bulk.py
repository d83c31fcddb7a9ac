"""Many rows into one table at once, as fast as the database takes them.

Capture writes a few hundred rows per document while it holds the capture lock, so their cost is
the ingest ceiling. SQLAlchemy's ORM bulk insert spends most of it in Python, per row; PostgreSQL's
COPY takes the rows as one stream, with psycopg adapting them in C. Elsewhere (SQLite) a Core
executemany does without the ORM's bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, cast

import psycopg
from psycopg.types.json import Json
from sqlalchemy import JSON, Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from tracechain.store.models import Base


def insert_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys, column names) into the model's table in the
    session's transaction, in order: an autoincrement key follows the order of `rows`. Columns
    left out get their scalar defaults, as with an INSERT."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    if session.get_bind().dialect.name != "postgresql":
        session.execute(table.insert(), list(rows))
        return
    names = list(rows[0])
    defaults = {
        column.name: column.default.arg
        for column in table.c
        if column.name not in names and isinstance(column.default, ScalarElementColumnDefault)
    }
    names += defaults
    adapters = [_adapter(table.c[name].type) for name in names]
    quote = session.get_bind().dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(name) for name in names)}) FROM STDIN"
    driver = session.connection().connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = {**defaults, **row}
                copy.write_row([adapt(values[name]) for adapt, name in zip(adapters, names, strict=True)])
    except psycopg.errors.IntegrityError as exc:  # as SQLAlchemy raises it for an INSERT
        raise IntegrityError(statement, None, exc) from exc


def _adapter(column_type: Any) -> Callable[[Any], Any]:
    """What SQLAlchemy's type would have done to a value before psycopg sees it."""
    if isinstance(column_type, JSON):
        return lambda value: None if value is None else Json(value)
    # psycopg writes an Enum by its name; the tables hold StrEnum values.
    return lambda value: value.value if isinstance(value, Enum) else value


def allocate_ids(session: Session, model: type[Base], count: int) -> list[int]:
    """`count` new values of the model's integer key, in ascending order, for rows `insert_rows`
    writes and other rows point at (COPY hands no keys back). PostgreSQL takes them from the key's
    sequence. SQLite serves one process, whose captures hold the capture lock, so the highest key
    counted on is free."""
    if count == 0:
        return []
    table = cast(Table, model.__table__)
    (key,) = table.primary_key.columns
    if session.get_bind().dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, key.name)
        taken = session.scalars(select(func.nextval(sequence)).select_from(func.generate_series(1, count)))
        return sorted(int(value) for value in taken)
    highest = int(session.scalar(select(func.coalesce(func.max(key), 0))) or 0)
    return list(range(highest + 1, highest + 1 + count))
