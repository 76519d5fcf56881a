"""PostgreSQL engine tests: one real server for the session, a fresh database per test."""

from pg_server import pg_dsn, pg_server  # noqa: F401 - the fixtures (tests/pg_server.py)
