"""The read model and the outbox: SQLAlchemy models, sessions, migrations. SQL lives only here."""
