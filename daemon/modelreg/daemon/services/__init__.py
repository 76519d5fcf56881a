"""Policy between HTTP and the store: validation, decisions, orchestration; no SQL, no HTTP (issue 9)."""
