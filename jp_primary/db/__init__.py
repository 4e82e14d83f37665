"""Persistence: SQLModel tables, engine/session set-up and the repositories (all SQL lives here)."""
