"""MLflow's REST API over our services (PRODUCT.md §9, issue 10).

The stock ``mlflow`` client and unchanged training code talk to these routes: the model
registry (``registry.py``), the minimal tracking subset ``log_model(registered_model_name=…)``
needs (``tracking.py``), and ``mlflow-artifacts`` for files (``artifacts.py``). They only
translate MLflow's protocol (field names, string versions, stages in title case, milliseconds,
its error shape) into calls of the same services the /v1 API uses, so gates, sniffing, the
audit log and the TUI see every MLflow write.
"""
