"""Storage: SQLAlchemy models, Alembic migrations, and the store used by the engine and API."""
