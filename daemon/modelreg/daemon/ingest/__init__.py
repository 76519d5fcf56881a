"""Drop folders (PRODUCT.md §6): watch, decide completeness from scans, register exactly once."""
