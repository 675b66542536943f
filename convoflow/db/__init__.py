"""Database layer: engine and sessions, models, migrations and the repository (all SQL lives here)."""
