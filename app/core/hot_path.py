"""The hot path: an API operation's endpoint called without FastAPI's dependency solving.

The integration's two hot operations (`POST /v1/transfers` and `POST /v1/transfers/{id}/
failed`) are marked `@hot_path`. For them the route class (core.api_route) tries this first.
It takes a request only when every part of it is plainly in order, and works out the
endpoint's arguments with FastAPI's own pieces, in one pass, with nothing else around them:

- the path parameters and the JSON body are validated by FastAPI's own functions, with the
  route's own fields;
- the principal comes from the same key cache and rate limit (`auth.identify`), and must hold
  one of the roles that the operation's `require` dependency admits;
- the request's session is the one the route class opened (`request.state.session`);
- any other dependency is a function of the request alone, and is called with it;
- the answer is serialised by FastAPI's own `serialize_response`, as FastAPI does it.

Anything else is declined, before anything has been written: a missing or unknown key, a
role refused, a body or path that does not validate, a body that is not plain JSON. A
declined request goes to FastAPI's own handler, which does everything again from the start
and gives its usual answer (the body, once read, is kept by the request). So a client can
see no difference, except in time: the OpenAPI document, the problem answers, idempotency,
the rate limit, the body limit, audit rows, metrics and logs all stay as they are.

`HANDOFF_HOT_PATH=false` sends every request to FastAPI's handler.
"""

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute, serialize_response

from app.core.auth import identify
from app.core.database import get_session

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[[Request], Coroutine[Any, Any, Response]]

_MARK = "hot_path"
_DECLINE = object()  # what a resolver returns when the request is not the hot path's
Resolver = Callable[[Request], Awaitable[Any]]


def hot_path(endpoint: F) -> F:
    """Mark an endpoint to be served by the hot path (see the module's docstring)."""
    setattr(endpoint, _MARK, True)
    return endpoint


def is_hot(endpoint: Callable[..., Any]) -> bool:
    return bool(getattr(endpoint, _MARK, False))


async def _session(request: Request) -> Any:
    held = getattr(request.state, "session", None)
    return _DECLINE if held is None else held


def _principal(admits: tuple[Any, ...]) -> Resolver:
    async def resolve(request: Request) -> Any:
        session = getattr(request.state, "session", None)
        if session is None:
            return _DECLINE
        # The key cache, and the rate limit counted once for the request, as auth's
        # dependency does it (None without a bearer key); a 429 is raised here exactly as it
        # would be there.
        principal = await identify(request, session)
        if principal is None or not any(principal.can(role) for role in admits):
            return _DECLINE
        return principal

    return resolve


def _of_the_request(dependant: Dependant) -> Resolver:
    call = dependant.call
    name = dependant.request_param_name
    assert call is not None and name is not None

    async def resolve(request: Request) -> Any:
        return await call(**{name: request})

    return resolve


def _resolver(dependant: Dependant) -> Resolver:
    """How the hot path works out one of the endpoint's dependencies; TypeError for a kind it
    does not know, so that a marked endpoint cannot be served differently by mistake."""
    call = dependant.call
    if call is get_session:
        return _session
    admits = getattr(call, "admits", None)
    if admits is not None:
        return _principal(admits)
    alone = not (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.dependencies
    )
    if alone and dependant.request_param_name and inspect.iscoroutinefunction(call):
        return _of_the_request(dependant)
    raise TypeError(f"the hot path cannot work out the dependency {dependant.name!r} ({call})")


def _plain_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


class HotPath:
    """The hot path of one route; called with a request, it answers it or returns None."""

    def __init__(self, route: APIRoute) -> None:
        dependant = route.dependant
        refused = {
            "query parameters": dependant.query_params,
            "header parameters": dependant.header_params,
            "cookie parameters": dependant.cookie_params,
            "more than one body parameter": dependant.body_params[1:],
            "the request, response or background tasks as parameters": [
                name
                for name in (
                    dependant.request_param_name,
                    dependant.response_param_name,
                    dependant.background_tasks_param_name,
                )
                if name
            ],
        }
        for what, found in refused.items():
            if found:
                raise TypeError(f"the hot path of {route.path} cannot take {what}")
        if route._embed_body_fields or not inspect.iscoroutinefunction(dependant.call):
            raise TypeError(f"the hot path of {route.path} needs an async endpoint, body as is")
        # FastAPI answers such a route with Response(dump_json bytes): so does the hot path.
        if route.response_field is None or not isinstance(route.response_class, DefaultPlaceholder):
            raise TypeError(f"the hot path of {route.path} needs a response model, as JSON")
        self.route = route
        self.call = dependant.call
        self.path_fields = dependant.path_params
        self.body_fields = dependant.body_params
        self.resolvers: list[tuple[str, Resolver]] = []
        for dependency in dependant.dependencies:
            assert dependency.name is not None  # an endpoint's parameter
            self.resolvers.append((dependency.name, _resolver(dependency)))

    async def __call__(self, request: Request) -> Response | None:
        if not request.app.state.settings.hot_path:
            return None
        values: dict[str, Any] = {}
        if self.path_fields:
            found, errors = request_params_to_args(self.path_fields, request.path_params)
            if errors:
                return None
            values.update(found)
        if self.body_fields:
            if not _plain_json(request):
                return None
            try:
                body = await request.json()
            except Exception:
                return None  # FastAPI's handler reads it again and answers as it does
            found, errors = await request_body_to_args(
                self.body_fields, body, embed_body_fields=False
            )
            if errors:
                return None
            values.update(found)
        for name, resolve in self.resolvers:
            value = await resolve(request)
            if value is _DECLINE:
                return None
            values[name] = value
        route = self.route
        assert self.call is not None
        content = await serialize_response(
            field=route.response_field,
            response_content=await self.call(**values),
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
            dump_json=True,
        )
        return Response(
            content=content, status_code=route.status_code or 200, media_type="application/json"
        )


def handler(route: APIRoute, full: Handler) -> Handler:
    """The route's handler: the hot path, else FastAPI's own (`full`)."""
    hot = HotPath(route)

    async def serve(request: Request) -> Response:
        return await hot(request) or await full(request)

    return serve
