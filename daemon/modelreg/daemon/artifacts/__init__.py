"""Artifact bytes: the content-addressed blob store, materialised versions and the serving links (PRODUCT.md §2, §5)."""
