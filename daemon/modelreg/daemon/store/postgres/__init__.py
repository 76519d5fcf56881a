"""The PostgreSQL backend (issue 13), groundwork: the engine, the migrations, the event chain
and version allocation. The aggregates are not ported yet, so ``open_store`` does not offer
it to the daemon."""
