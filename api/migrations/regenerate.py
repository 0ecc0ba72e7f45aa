"""Rebuild the initial migration from the models (before the first release only).

Run: ``python -m api.migrations.regenerate``.

Autogenerates ``versions/0001_initial_schema.py`` against an empty SQLite database from every module in
MODEL_MODULES. Once a release has shipped, add new revisions with ``alembic revision --autogenerate`` instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from api.migrations import MIGRATIONS_DIR, alembic_config
from mission.db import make_engine

INITIAL = MIGRATIONS_DIR / "versions" / "0001_initial_schema.py"


def main() -> None:
    """Delete and regenerate the initial revision."""
    INITIAL.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'empty.db'}")
        try:
            command.revision(
                alembic_config(engine=engine), message="initial schema", autogenerate=True, rev_id="0001"
            )
        finally:
            engine.dispose()
    print(f"wrote {INITIAL}")


if __name__ == "__main__":
    main()
