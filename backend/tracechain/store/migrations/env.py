"""Alembic environment: migrations run on the connection tracechain hands over (store.db.migrate)."""

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from tracechain.store.models import Base, UtcDateTime


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Migrations name the database's own types: a UtcDateTime column is DateTime(timezone=True)
    there (the UTC reading back is Python's business), so migrations never import the models."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=Base.metadata, render_as_batch=True, render_item=_render_item
)
with context.begin_transaction():
    context.run_migrations()
