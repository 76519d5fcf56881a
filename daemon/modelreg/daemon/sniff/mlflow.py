"""MLflow ``MLmodel`` files: flavors, run id, model uuid, creation time, signature.

The signature's ``inputs`` / ``outputs`` / ``params`` are JSON documents stored
as YAML strings (often folded over several lines); they are decoded here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from .result import SniffResult, bounded, cap_str, failed

MAX_MLMODEL = 4 * 1000 * 1000


def load_yaml(text: str) -> object:
    """``yaml.safe_load`` with the C loader when available (never the full loader)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way


def sniff(path: Path, name: str) -> SniffResult:
    """Flavors and their key settings, run_id (as ``produced_by`` lineage), signature."""
    if os.path.getsize(path) > MAX_MLMODEL:
        return failed("mlflow", f"{name} is over {MAX_MLMODEL:,} bytes; not read")
    try:
        doc = load_yaml(Path(path).read_text("utf-8", errors="replace"))
    except (yaml.YAMLError, RecursionError) as exc:
        return failed("mlflow", f"{name} is not valid YAML: {cap_str(str(exc), 300)}")
    if not isinstance(doc, dict):
        return failed("mlflow", f"{name} is not an MLmodel document (not a YAML mapping)")
    flavors = doc.get("flavors") if isinstance(doc.get("flavors"), dict) else {}
    facts: dict[str, object] = {
        "flavors": sorted(str(k) for k in flavors),
        "flavor_details": {
            str(k): {fk: fv for fk, fv in v.items() if isinstance(fv, str | int | float | bool)}
            for k, v in flavors.items()
            if isinstance(v, dict)
        },
    }
    for key in ("run_id", "model_uuid", "utc_time_created", "mlflow_version", "artifact_path",
                "model_size_bytes", "databricks_runtime", "model_id"):
        if doc.get(key) is not None:
            facts[key] = doc[key]
    problems = []
    signature = doc.get("signature")
    if isinstance(signature, dict):
        decoded = {}
        for part in ("inputs", "outputs", "params"):
            raw = signature.get(part)
            if isinstance(raw, str):
                try:
                    decoded[part] = json.loads(raw) if len(raw) <= MAX_MLMODEL else None
                except (ValueError, RecursionError):
                    problems.append(f"{name}: signature {part} is not valid JSON")
            elif raw is not None:
                decoded[part] = raw
        facts["signature"] = decoded
    lineage = []
    run_id = doc.get("run_id")
    if isinstance(run_id, str | int) and not isinstance(run_id, bool) and str(run_id):
        lineage.append({"relation": "produced_by", "run": cap_str(str(run_id), 256)})
    return SniffResult(format="mlflow", facts=bounded(facts), problems=problems, lineage=lineage)
