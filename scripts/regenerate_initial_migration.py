"""Rewrite store/migrations/versions/0001_initial_schema.py from the models.

Until the first release the schema has one migration; whoever changes a model runs this and commits
the model and the migration together (tests/store/test_migrations.py checks they agree).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from tracechain.store.db import MIGRATIONS_DIR

INITIAL = MIGRATIONS_DIR / "versions" / "0001_initial_schema.py"


def main() -> None:
    INITIAL.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'empty.db'}")
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.revision(config, message="initial schema", autogenerate=True, rev_id="0001")
    generated = next((MIGRATIONS_DIR / "versions").glob("0001_*.py"))
    generated.rename(INITIAL)
    ruff = Path(sys.executable).parent / "ruff"
    subprocess.run([str(ruff), "format", "--quiet", str(INITIAL)], check=True)
    subprocess.run([str(ruff), "check", "--fix", "--quiet", str(INITIAL)], check=False)
    print(f"wrote {INITIAL}")


if __name__ == "__main__":
    main()
