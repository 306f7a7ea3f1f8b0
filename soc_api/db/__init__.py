"""The SOC database: SQLAlchemy 2 models, engine/session factory and Alembic migrations."""
