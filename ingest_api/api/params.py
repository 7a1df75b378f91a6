"""Query and path parameters: the types several routes share, and no silent parameter.

A query parameter the matched operation does not declare is a 422:
`reject_unknown_query` is an app-wide dependency (create_app puts it on every route), so every
endpoint, including ones added later, gets the check with nothing to write: the accepted names are
read off the operation's own declared query parameters (their aliases, with those of its
dependencies), once per route.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query, Request
from pydantic import BaseModel

from ..core.errors import ApiError

# ------------------------------------------------------------------ shared parameter types

ModelId = Annotated[str, Path(min_length=1, max_length=256, description="model id, e.g. k2-think-v2")]
ScoreQ = Annotated[Literal["latest", "best", "step"] | None, Query(
    description="which checkpoint's score: latest, best (max over noisy values: optimistic), or step (with "
                "`step`); the default is latest, except on the heatmap and the leaderboard, where it is best "
                "(the earlier dashboard's choice)")]
StepQ = Annotated[int | None, Query(ge=0, le=2**62, description="training step for score=step")]
CategoryQ = Annotated[str | None, Query(min_length=1, max_length=200, description="only datasets of this category")]
TypeQ = Annotated[Literal["training", "baseline"] | None, Query(description="only this model type")]
OwnerQ = Annotated[str | None, Query(min_length=1, max_length=200, description="only this owner")]
SuiteQ = Annotated[str | None, Query(min_length=1, max_length=256, description="only this suite's datasets")]
SuiteIdQ = Annotated[str | None, Query(min_length=1, max_length=256, deprecated=True,
                                       description="the earlier dashboard's name of `suite` (same meaning)")]


def score_choice(score: str | None, step: int | None, default: str = "latest") -> str:
    """`default` (latest) when not given; a step alone means score=step; score=step needs a step (422 otherwise)."""
    if score is None:
        return "step" if step is not None else default
    if score == "step" and step is None:
        raise ApiError(422, "score=step needs a `step` query parameter", field="step")
    if score != "step" and step is not None:
        raise ApiError(422, f"`step` only goes with score=step (got score={score})", field="step")
    return score


def one_suite(suite: str | None, suite_id: str | None) -> str | None:
    """`suite` or its older name `suite_id`; both given and different is a 422."""
    if suite is not None and suite_id is not None and suite != suite_id:
        raise ApiError(422, f"suite={suite!r} and suite_id={suite_id!r} disagree: give one", field="suite_id")
    return suite if suite is not None else suite_id


# ------------------------------------------------------------------ no silent parameter

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
