"""GET /api/datasets, /api/datasets/{name}/leaderboard and /api/filters."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from ...core.errors import not_found
from ...read import catalog, leaderboard
from .. import replies as R
from ..deps import ConnDep
from ..params import ScoreQ, StepQ, SuiteIdQ, SuiteQ, one_suite, score_choice
from ..replies import reply, typed

router = APIRouter(prefix="/api", tags=["datasets"])


@router.get("/datasets", **typed(R.DatasetsReply))
def get_datasets(conn: ConnDep) -> Response:
    """Dataset names (plus details: category, direction, models and runs per dataset)."""
    rows = catalog.list_datasets(conn)
    return reply({"datasets": [r["dataset_name"] for r in rows], "details": rows})


@router.get("/datasets/{dataset_name}/leaderboard", **typed(R.LeaderboardReply, {"dataset_name": "gsm8k", "score_choice": "best", "step": None,
                                                                                  "is_higher_better": True,
                                                                                  "tie_rule": "…", "leaderboard": [
    {"model_id": "k2-think-v2", "display_name": "K2 Think v2", "model_type": "training", "score": 0.6,
     "dataset_name": "gsm8k", "owner": "varad", "eval_run_id": "run-1", "stderr": 0.049,
     "metric_value": 0.6, "metric_name": "accuracy", "checkpoint_id": "k2-think-v2__step-2000", "training_step": 2000,
     "n": 100, "ci_lower": 0.50, "ci_upper": 0.69, "interval_method": "wilson", "rank": 1, "tie_group": 1,
     "is_tied": True, "p_vs_group_leader": None}]}))
def get_leaderboard(
    dataset_name: Annotated[str, Path(min_length=1, max_length=256)], conn: ConnDep,
    score: ScoreQ = None, step: StepQ = None,
    model_type: Annotated[Literal["training", "baseline"] | None, Query(description="only this type")] = None,
    alpha: Annotated[float, Query(gt=0, lt=0.5, description="level of the test that separates ranks")] = 0.05,
    suite: SuiteQ = None, suite_id: SuiteIdQ = None,
) -> Response:
    """Models ranked by the chosen score (default best, as the earlier dashboard), with n, interval, source
    checkpoint and statistical tie groups. With a suite the dataset must be one of its datasets (else
    the leaderboard is empty)."""
    sid = one_suite(suite, suite_id)
    in_suite = True
    if sid is not None:
        s = catalog.get_suite(conn, sid)
        if s is None:
            raise not_found("suite", sid)
        in_suite = dataset_name in s["dataset_names"]
    out = leaderboard.leaderboard(conn, dataset_name, score=score_choice(score, step, "best"), step=step,
                              model_type=model_type, alpha=alpha)
    if out is None:
        raise not_found("dataset", dataset_name)
    if sid is not None:
        out["suite_id"] = sid
        if not in_suite:
            out["leaderboard"] = []
            out["note"] = f"dataset {dataset_name!r} is not in suite {sid!r}"
    return reply(out)


@router.get("/filters", **typed(R.FiltersReply))
def get_filters(conn: ConnDep) -> Response:
    """Distinct owners, model types, datasets, categories and suites for dropdowns."""
    return reply(catalog.filters(conn))
