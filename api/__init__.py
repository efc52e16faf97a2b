"""The otmon therapist service (FastAPI + SQLAlchemy + Alembic).

Entry points for the CLI: ``api.settings.Settings`` / ``get_settings()``,
``api.db.upgrade(database_url)`` (run the migrations), ``api.app.create_app(settings)``,
``api.db.make_engine(url)`` / ``session_factory(engine)`` and
``api.services.users.create(db, email=..., password=..., role=...)``.
"""
