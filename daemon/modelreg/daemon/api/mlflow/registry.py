"""MLflow's model-registry routes, method and path as its client calls them
(mlflow/store/model_registry/rest_store.py, model_registry.proto). Each one parses, calls the
registry service (services/mlflow/registry.py) once and replies in MLflow's JSON (views.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from modelreg.shared.errors import Conflict, NotFound

from ...keys import MLFLOW_REGISTRY
from ...services.identity import Identity
from ...services.mlflow.registry import MlflowRegistry
from ..http import identity
from . import views
from .errors import INVALID_PARAMETER_VALUE, RESOURCE_ALREADY_EXISTS, MlflowError
from .http import actor, params, reply

routes = web.RouteTableDef()
PREFIX = "/api/2.0/mlflow"


def _registry(request: web.Request) -> MlflowRegistry:
    return request.app[MLFLOW_REGISTRY]


def _acting(request: web.Request) -> Identity:
    """Who moves stages and aliases (the lifecycle checks the scope): the request's identity; the
    home's token records the MLflow actor, a named token its own name."""
    return replace(identity(request), claimed=actor(request))


async def _exists_as_mlflow(call: Awaitable[Any]) -> Any:
    """A name already taken is MLflow's RESOURCE_ALREADY_EXISTS (400), not our conflict."""
    try:
        return await call
    except Conflict as exc:
        if exc.details.get("exists"):
            raise MlflowError(RESOURCE_ALREADY_EXISTS, exc.message, 400) from None
        raise


# -- registered models -------------------------------------------------------------------------


@routes.post(f"{PREFIX}/registered-models/create")
async def create_model(request: web.Request) -> web.Response:
    found = await _exists_as_mlflow(_registry(request).create_model(await params(request), actor(request)))
    return reply({"registered_model": views.model(found)})


@routes.get(f"{PREFIX}/registered-models/get")
async def get_model(request: web.Request) -> web.Response:
    return reply({"registered_model": views.model(await _registry(request).get_model(await params(request)))})


@routes.post(f"{PREFIX}/registered-models/rename")
async def rename_model(request: web.Request) -> web.Response:
    found = await _exists_as_mlflow(_registry(request).rename_model(await params(request), actor(request)))
    return reply({"registered_model": views.model(found)})


@routes.patch(f"{PREFIX}/registered-models/update")
async def update_model(request: web.Request) -> web.Response:
    found = await _registry(request).update_model(await params(request), actor(request))
    return reply({"registered_model": views.model(found)})


@routes.delete(f"{PREFIX}/registered-models/delete")
async def delete_model(request: web.Request) -> web.Response:
    await _registry(request).delete_model(await params(request), actor(request))
    return reply({})


@routes.get(f"{PREFIX}/registered-models/search")
async def search_models(request: web.Request) -> web.Response:
    found = await _registry(request).search_models(await params(request))
    return reply(views.page(found, "registered_models", views.model))


@routes.post(f"{PREFIX}/registered-models/get-latest-versions")
@routes.get(f"{PREFIX}/registered-models/get-latest-versions")
async def latest_versions(request: web.Request) -> web.Response:
    found = await _registry(request).latest_versions(await params(request))
    return reply({"model_versions": [views.version(v) for v in found]})


@routes.post(f"{PREFIX}/registered-models/set-tag")
async def set_model_tag(request: web.Request) -> web.Response:
    await _registry(request).set_model_tag(await params(request), actor(request))
    return reply({})


@routes.delete(f"{PREFIX}/registered-models/delete-tag")
async def delete_model_tag(request: web.Request) -> web.Response:
    await _registry(request).delete_model_tag(await params(request), actor(request))
    return reply({})


# -- aliases ------------------------------------------------------------------------------------


@routes.post(f"{PREFIX}/registered-models/alias")
async def set_alias(request: web.Request) -> web.Response:
    await _registry(request).set_alias(await params(request), _acting(request))
    return reply({})


@routes.delete(f"{PREFIX}/registered-models/alias")
async def delete_alias(request: web.Request) -> web.Response:
    await _registry(request).delete_alias(await params(request), _acting(request))
    return reply({})


@routes.get(f"{PREFIX}/registered-models/alias")
async def version_by_alias(request: web.Request) -> web.Response:
    try:
        found = await _registry(request).version_by_alias(await params(request))
    except NotFound as exc:
        if exc.details.get("alias"):  # MLflow answers an unknown alias as a bad parameter
            raise MlflowError(INVALID_PARAMETER_VALUE, exc.message, 400) from None
        raise
    return reply({"model_version": views.version(found)})


# -- model versions -----------------------------------------------------------------------------


def _version_route(call: Callable[[MlflowRegistry, dict[str, Any], Any], Awaitable[Any]],
                   who: Callable[[web.Request], Any] = actor):  # noqa: ANN202
    async def handler(request: web.Request) -> web.Response:
        found = await call(_registry(request), await params(request), who(request))
        return reply({"model_version": views.version(found)} if found is not None else {})
    return handler


routes.post(f"{PREFIX}/model-versions/create")(_version_route(MlflowRegistry.create_version))
routes.patch(f"{PREFIX}/model-versions/update")(_version_route(MlflowRegistry.update_version))
routes.post(f"{PREFIX}/model-versions/transition-stage")(_version_route(MlflowRegistry.transition, _acting))
routes.delete(f"{PREFIX}/model-versions/delete")(_version_route(MlflowRegistry.delete_version))
routes.post(f"{PREFIX}/model-versions/set-tag")(_version_route(MlflowRegistry.set_version_tag))
routes.delete(f"{PREFIX}/model-versions/delete-tag")(_version_route(MlflowRegistry.delete_version_tag))


@routes.get(f"{PREFIX}/model-versions/get")
async def get_version(request: web.Request) -> web.Response:
    return reply({"model_version": views.version(await _registry(request).get_version(await params(request)))})


@routes.get(f"{PREFIX}/model-versions/get-download-uri")
async def download_uri(request: web.Request) -> web.Response:
    return reply({"artifact_uri": await _registry(request).download_uri(await params(request))})


@routes.get(f"{PREFIX}/model-versions/search")
async def search_versions(request: web.Request) -> web.Response:
    found = await _registry(request).search_versions(await params(request))
    return reply(views.page(found, "model_versions", views.version))
