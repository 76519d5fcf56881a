"""MLflow tracking routes: the subset a training script's ``log_model`` needs (issue 10).

Experiments (create, get, get-by-name), runs (create, update, get, log-parameter, log-metric,
log-batch, set-tag, delete-tag, outputs), metric history, logged models, and server-info.
Every other tracking endpoint answers ENDPOINT_NOT_FOUND (the middleware's 404). Each handler
parses, calls one ``Tracking`` method (services/mlflow/tracking.py) and replies.
"""

from __future__ import annotations

from aiohttp import web

from modelreg.shared.errors import Conflict

from ...keys import MLFLOW_TRACKING
from .errors import RESOURCE_ALREADY_EXISTS, MlflowError
from .http import params, reply

routes = web.RouteTableDef()
API = "/api/2.0/mlflow"


def _tracking(request: web.Request):  # noqa: ANN202 - the Tracking service
    return request.app[MLFLOW_TRACKING]


@routes.get(f"{API}/experiments/get-by-name")
async def get_experiment_by_name(request: web.Request) -> web.Response:
    return reply(await _tracking(request).get_experiment_by_name(await params(request)))


@routes.get(f"{API}/experiments/get")
async def get_experiment(request: web.Request) -> web.Response:
    return reply(await _tracking(request).get_experiment(await params(request)))


@routes.post(f"{API}/experiments/create")
async def create_experiment(request: web.Request) -> web.Response:
    try:
        return reply(await _tracking(request).create_experiment(await params(request)))
    except Conflict as exc:  # MLflow names this one exactly
        raise MlflowError(RESOURCE_ALREADY_EXISTS, exc.message) from None


@routes.post(f"{API}/runs/create")
async def create_run(request: web.Request) -> web.Response:
    return reply(await _tracking(request).create_run(await params(request)))


@routes.get(f"{API}/runs/get")
async def get_run(request: web.Request) -> web.Response:
    return reply(await _tracking(request).get_run(await params(request)))


@routes.post(f"{API}/runs/update")
async def update_run(request: web.Request) -> web.Response:
    return reply(await _tracking(request).update_run(await params(request)))


@routes.post(f"{API}/runs/log-parameter")
async def log_param(request: web.Request) -> web.Response:
    return reply(await _tracking(request).log_param(await params(request)))


@routes.post(f"{API}/runs/log-metric")
async def log_metric(request: web.Request) -> web.Response:
    return reply(await _tracking(request).log_metric(await params(request)))


@routes.post(f"{API}/runs/log-batch")
async def log_batch(request: web.Request) -> web.Response:
    return reply(await _tracking(request).log_batch(await params(request)))


@routes.post(f"{API}/runs/set-tag")
async def set_tag(request: web.Request) -> web.Response:
    return reply(await _tracking(request).set_tag(await params(request)))


@routes.post(f"{API}/runs/delete-tag")
async def delete_tag(request: web.Request) -> web.Response:
    return reply(await _tracking(request).delete_tag(await params(request)))


@routes.post(f"{API}/runs/outputs")
async def log_outputs(request: web.Request) -> web.Response:
    return reply(await _tracking(request).log_outputs(await params(request)))


@routes.get(f"{API}/metrics/get-history")
async def metric_history(request: web.Request) -> web.Response:
    return reply(await _tracking(request).metric_history(await params(request)))


@routes.post(f"{API}/logged-models")
async def create_logged_model(request: web.Request) -> web.Response:
    return reply(await _tracking(request).create_logged_model(await params(request)))


@routes.post(f"{API}/logged-models/search")
async def search_logged_models(request: web.Request) -> web.Response:
    return reply(await _tracking(request).search_logged_models(await params(request)))


@routes.get(f"{API}/logged-models/{{model_id}}")
async def get_logged_model(request: web.Request) -> web.Response:
    return reply(await _tracking(request).get_logged_model(request.match_info["model_id"], await params(request)))


@routes.patch(f"{API}/logged-models/{{model_id}}")
async def finalize_logged_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    return reply(await _tracking(request).finalize_logged_model(model_id, await params(request)))


@routes.delete(f"{API}/logged-models/{{model_id}}")
async def delete_logged_model(request: web.Request) -> web.Response:
    return reply(await _tracking(request).delete_logged_model(request.match_info["model_id"]))


@routes.patch(f"{API}/logged-models/{{model_id}}/tags")
async def set_logged_model_tags(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    return reply(await _tracking(request).set_logged_model_tags(model_id, await params(request)))


@routes.delete(f"{API}/logged-models/{{model_id}}/tags/{{key:.+}}")
async def delete_logged_model_tag(request: web.Request) -> web.Response:
    info = request.match_info
    return reply(await _tracking(request).delete_logged_model_tag(info["model_id"], info["key"]))


@routes.post(f"{API}/logged-models/{{model_id}}/params")
async def log_logged_model_params(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    return reply(await _tracking(request).log_logged_model_params(model_id, await params(request)))


@routes.get("/api/3.0/mlflow/server-info")
async def server_info(request: web.Request) -> web.Response:
    """What the client asks before choosing how to move artifacts: proxied multipart uploads
    yes, presigned downloads no (files stream through GET artifacts/<path>)."""
    return reply({"store_type": "SqlStore", "workspaces_enabled": False, "trace_archival_enabled": False,
                  "multipart_uploads_enabled": True, "multipart_downloads_enabled": False,
                  "presigned_upload_run_id_supported": False, "presigned_upload_model_id_supported": False,
                  "features_enabled": {"gateway": False}})
