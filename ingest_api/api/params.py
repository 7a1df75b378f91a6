"""No silent parameter: a query parameter the matched operation does not declare is a 422.

`reject_unknown_query` is an app-wide dependency (create_app puts it on every route), so every
endpoint, including ones added later, gets the check with nothing to write: the accepted names are
read off the operation's own declared query parameters (their aliases, with those of its
dependencies), once per route.
"""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel

from ..core.errors import ApiError

_CACHE_ATTR = "_eval360_query_names"


def accepted_query_names(route) -> tuple[str, ...]:
    """The query parameter names (aliases where declared) an API route accepts, sorted."""
    names = getattr(route, _CACHE_ATTR, None)
    if names is None:
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            return ()
        names = tuple(sorted(_query_names(dependant)))
        setattr(route, _CACHE_ATTR, names)
    return names


def _query_names(dependant) -> set[str]:
    """Aliases of the query parameters of a dependant and its sub-dependencies (a pydantic model
    declared as the query parameters contributes its fields)."""
    out: set[str] = set()
    todo, seen = [dependant], set()
    while todo:
        d = todo.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        for f in d.query_params:
            ann = getattr(f.field_info, "annotation", None)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                out.update(fi.alias or name for name, fi in ann.model_fields.items())
            else:
                out.add(f.alias)
        todo.extend(d.dependencies)
    return out


async def reject_unknown_query(request: Request) -> None:
    """422 naming each unknown query parameter and listing the accepted ones (async: no thread hop)."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    if route is None:
        return
    accepted = accepted_query_names(route)
    unknown = [k for k in dict.fromkeys(request.query_params.keys()) if k not in accepted]
    if not unknown:
        return
    listed = ", ".join(accepted) if accepted else "none"
    names = ", ".join(f"`{k}`" for k in unknown)
    what = "parameter" if len(unknown) == 1 else "parameters"
    raise ApiError(422, f"unknown query {what} {names}; this operation accepts: {listed}",
                   field=unknown[0], code="unknown_parameter",
                   extra={"unknown": unknown, "accepted": list(accepted)})
