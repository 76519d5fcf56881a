"""MLflow's protocol over our services: the registry policy (registry.py), its search grammar (filters.py)."""
