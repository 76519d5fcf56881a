"""The route policy (issue 12): the scope each route needs and the models it concerns.

The middleware calls ``authorize`` right after it identified the caller and before any handler
runs, so a refusal (403 ``forbidden``) comes before validation and changes nothing. The scope of
a route is ``SCOPE[(method, canonical path)]`` where listed, else the rule for the rest: GET and
HEAD read, every other method writes. The models a request concerns are read from its path
(``/v1/models/{name}…``, ``{ref}``), its query (``/v1/compare?ref=``) or, for the few routes that
name a model in their body (creating or renaming a model, MLflow's registry calls), its body;
a model-limited token must cover every one of them.

Finer rules live where the facts are: the lifecycle asks for ``promote`` to change a stage or
roll back and to move a protected alias (at the route those need ``write``, so ``read`` is
refused here); a registration that names a ``path`` on the daemon's machine needs ``admin``
(``needs_admin_for_path``), since the daemon reads any file it can.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from modelreg.shared.errors import Forbidden, ModelregError

from ..services.identity import SCOPES, Identity
from .http import body
from .mlflow.http import params as mlflow_params

READ, WRITE, PROMOTE, ADMIN = SCOPES
MLFLOW = "/api/2.0/mlflow"

# Every route whose scope is not the rule for the rest (GET/HEAD read, other methods write).
SCOPE: dict[tuple[str, str], str] = {
    # Who may act: tokens.
    ("GET", "/v1/tokens"): ADMIN, ("POST", "/v1/tokens"): ADMIN, ("DELETE", "/v1/tokens/{name}"): ADMIN,
    # The registry's own rules and machinery: gates, hooks, watched folders, retention.
    ("POST", "/v1/gates"): ADMIN, ("DELETE", "/v1/gates/{id}"): ADMIN,
    ("GET", "/v1/hooks"): ADMIN, ("GET", "/v1/hooks/{id}/deliveries"): ADMIN,  # webhook URLs are often secrets
    ("POST", "/v1/hooks"): ADMIN, ("DELETE", "/v1/hooks/{id}"): ADMIN,
    ("POST", "/v1/watches"): ADMIN, ("DELETE", "/v1/watches/{key}"): ADMIN,  # the daemon reads those folders
    ("POST", "/v1/gc"): ADMIN,
    ("GET", "/v1/trust"): ADMIN,  # the keys whose signatures the registry trusts
    # Protecting an alias decides who may move it later (the lifecycle asks the same).
    ("PUT", "/v1/models/{name}/aliases/{alias}/protection"): PROMOTE,
    ("DELETE", "/v1/models/{name}/aliases/{alias}/protection"): PROMOTE,
    # What can take a serving version away or break the refs deployments resolve.
    ("DELETE", "/v1/models/{name}"): PROMOTE, ("DELETE", "/v1/models/{name}/versions/{selector}"): PROMOTE,
    ("POST", "/v1/models/{name}/rename"): PROMOTE,
    ("DELETE", f"{MLFLOW}/registered-models/delete"): PROMOTE, ("POST", f"{MLFLOW}/registered-models/rename"): PROMOTE,
    ("DELETE", f"{MLFLOW}/model-versions/delete"): PROMOTE,
    # POSTs that only read.
    ("POST", "/v1/audit/verify"): READ, ("POST", "/v1/verify"): READ,
    ("POST", f"{MLFLOW}/registered-models/get-latest-versions"): READ, ("POST", f"{MLFLOW}/logged-models/search"): READ,
}

# Routes of other parts of issue 12 by area, so that whatever exact paths they take, their
# writes need the right scope: approving needs promote (the service checks the model),
# watchdogs and trusted keys are the registry's configuration.
AREAS: tuple[tuple[str, str], ...] = (
    ("/v1/requests/", PROMOTE),
    ("/v1/models/{name}/watchdogs", ADMIN), ("/v1/watchdogs", ADMIN),
    ("/v1/trust", ADMIN),
)

# Routes whose body names a model (created or renamed to): the fields that do.
BODY_MODELS: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/v1/models"): ("name",),
    ("POST", "/v1/models/{name}/rename"): ("name",),
    ("POST", "/v1/gates"): ("model",),
}
MLFLOW_REGISTRY = (f"{MLFLOW}/registered-models/", f"{MLFLOW}/model-versions/")
MLFLOW_MODELS = ("name", "new_name")  # MLflow's registry names the model in ``name`` (rename: ``new_name``)
REGISTER = ("POST", "/v1/models/{name}/versions")


def route_scope(method: str, canonical: str) -> str:
    """The scope a route needs (the table, the areas, then the rule for the rest)."""
    method = "GET" if method == "HEAD" else method
    listed = SCOPE.get((method, canonical))
    if listed is not None:
        return listed
    if method == "GET":
        return READ
    for prefix, scope in AREAS:
        if canonical.startswith(prefix):
            return scope
    return WRITE


async def authorize(request: web.Request, who: Identity) -> None:
    """Raise Forbidden unless ``who`` may call this route on every model it concerns."""
    if who.scope == ADMIN and who.models is None:
        return  # the home's token and unrestricted admins: every route, every model
    resource = request.match_info.route.resource
    if resource is None:
        return  # no such route: the router answers 404/405
    method, canonical = request.method, resource.canonical
    scope = route_scope(method, canonical)
    doing = f"{method} {request.path[:200]}"
    who.require(scope, doing=doing)
    if (method, canonical) == REGISTER and scope != ADMIN and await _names_a_path(request):
        who.require(ADMIN, doing="registering a path on the daemon's machine (upload the files instead)")
    if who.models is None:
        return
    models = await models_of(request, method, canonical)
    if not models and scope == ADMIN:
        raise Forbidden(f"token {who.name!r} covers models {who.models!r}; {doing} concerns the whole registry "
                        "and needs an admin token for every model", {"identity": who.name, "models": who.models})
    for model in models:
        who.require(scope, model, doing=doing)


async def models_of(request: web.Request, method: str, canonical: str) -> list[str]:
    """The model names a request concerns (a malformed body names none: the handler refuses it)."""
    info = request.match_info
    names: list[str] = []
    if canonical.startswith("/v1/models/{name}"):
        names.append(info["name"])
    if "ref" in info:
        names.append(info["ref"].partition("@")[0])
    if canonical == "/v1/compare":
        names += [ref.partition("@")[0] for ref in request.query.getall("ref", [])]
    fields = BODY_MODELS.get((method, canonical))
    if fields:
        names += _strings(await _body(request, body), fields)
    elif canonical.startswith(MLFLOW_REGISTRY):
        names += _strings(await _body(request, mlflow_params), MLFLOW_MODELS)
    return names


def sees_event(who: Identity, event: dict[str, Any]) -> bool:
    """Whether an event is for ``who``'s eyes: a model-limited token sees the events of the models
    it covers; events of no model (tokens, hooks, watches) only a token that covers every model."""
    model = event.get("model")
    return who.models is None or (model is not None and who.covers(model))


async def _names_a_path(request: web.Request) -> bool:
    data = await _body(request, body)
    # signature_path too (issue 12): the daemon reads that file and serves it back as the bundle.
    return isinstance(data, dict) and (data.get("path") is not None or data.get("signature_path") is not None)


async def _body(request: web.Request, parse) -> Any:  # noqa: ANN001 - body() or mlflow_params()
    """The decoded body as its handler will read it (aiohttp keeps the bytes for the handler)."""
    try:
        return await parse(request)
    except ModelregError:
        return None


def _strings(data: Any, fields: tuple[str, ...]) -> list[str]:
    if not isinstance(data, dict):
        return []
    return [data[f] for f in fields if isinstance(data.get(f), str)]
