"""Our records as MLflow's JSON (``RegisteredModel``, ``ModelVersion`` of model_registry.proto).

Versions are strings, stages and statuses MLflow's words, times integer milliseconds, tags
``[{key, value}]``. Only fields the proto declares are sent: the client parses replies into
its protos.
"""

from __future__ import annotations

from typing import Any

from ...services.mlflow.filters import page_token
from ...services.mlflow.registry import FACTS_KEY, STAGE_NAMES, STATUS_NAMES
from ...store.records import MlflowModel, MlflowPage, MlflowVersion
from .http import ms


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items())]


def version(found: MlflowVersion) -> dict[str, Any]:
    v = found.version
    extra = v.facts.get(FACTS_KEY) if isinstance(v.facts.get(FACTS_KEY), dict) else {}
    out: dict[str, Any] = {
        "name": v.model_name,
        "version": str(v.number),
        "creation_timestamp": ms(v.created_at),
        "last_updated_timestamp": ms(v.updated_at),
        "user_id": v.created_by,
        "current_stage": STAGE_NAMES.get(v.stage, v.stage),
        "description": v.description,
        "source": v.source,
        "status": STATUS_NAMES.get(v.status, "READY"),
        "tags": _tags(found.tags),
        "aliases": list(found.aliases),
    }
    if found.run_id:
        out["run_id"] = found.run_id
    if v.status_message:
        out["status_message"] = v.status_message
    if isinstance(extra.get("run_link"), str):
        out["run_link"] = extra["run_link"]
    model_id = extra.get("model_id") or (v.source[len("models:/"):] if v.source.startswith("models:/m-") else None)
    if isinstance(model_id, str):
        out["model_id"] = model_id
    return out


def model(found: MlflowModel) -> dict[str, Any]:
    return {
        "name": found.name,
        "creation_timestamp": ms(found.created_at),
        "last_updated_timestamp": ms(found.updated_at),
        "description": found.description,
        "latest_versions": [version(v) for v in found.latest],
        "tags": _tags(found.tags),
        "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(found.aliases.items())],
    }


def page(found: MlflowPage, key: str, one: Any) -> dict[str, Any]:
    out: dict[str, Any] = {key: [one(item) for item in found.items]}
    if found.next_offset is not None:
        out["next_page_token"] = page_token(found.next_offset)
    return out
