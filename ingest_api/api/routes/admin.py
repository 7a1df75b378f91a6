"""Admin API (admin token only; the ingest token gets 403): suites, benchmark metadata, promotion
rules, webhooks, model edits and deletions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from ...core.auth import AdminAuth
from ...ops import admin as core
from .. import replies as R
from ..deps import ConnDep
from ..replies import typed

router = APIRouter(prefix="/api", tags=["admin"])

ModelId = Annotated[str, Path(min_length=1, max_length=256)]
CheckpointId = Annotated[str, Path(min_length=1, max_length=256)]
WebhookId = Annotated[int, Path(ge=1, le=2**62)]


@router.post("/admin/suites", **typed(R.SuiteWriteReply))
def post_suite(body: core.SuiteIn, conn: ConnDep, role: AdminAuth) -> dict:
    """Create or update a suite (a named list of datasets)."""
    with conn.transaction():
        return core.upsert_suite(conn, body, actor=role)


@router.post("/admin/benchmark-metadata", **typed(R.BenchmarksWriteReply))
def post_benchmark_metadata(body: core.BenchmarksIn, conn: ConnDep, role: AdminAuth) -> dict:
    """Bulk upsert of categories, subcategories, primary metric, direction and chance level per dataset."""
    with conn.transaction():
        return core.upsert_benchmarks(conn, body, actor=role)


@router.post("/admin/promotion-rules", **typed(R.RuleWriteReply))
def post_promotion_rule(body: core.RuleIn, conn: ConnDep, role: AdminAuth) -> dict:
    """Create or update a promotion rule."""
    with conn.transaction():
        return core.upsert_rule(conn, body, actor=role)


@router.get("/admin/promotion-rules", **typed(R.RulesReply))
def get_promotion_rules(conn: ConnDep, role: AdminAuth) -> dict:
    """List the promotion rules."""
    return core.list_rules(conn)


@router.delete("/admin/promotion-rules/{rule_name}", **typed(R.RuleDeleteReply))
def delete_promotion_rule(rule_name: Annotated[str, Path(min_length=1, max_length=256)], conn: ConnDep,
                          role: AdminAuth) -> dict:
    """Delete a promotion rule."""
    with conn.transaction():
        return core.delete_rule(conn, rule_name, actor=role)


@router.post("/admin/webhooks", **typed(R.WebhookWriteReply))
def post_webhook(body: core.WebhookIn, conn: ConnDep, role: AdminAuth) -> dict:
    """Register a webhook (http/https only); the reply shows its signing secret once."""
    with conn.transaction():
        return core.register_webhook(conn, body, actor=role)


@router.get("/admin/webhooks", **typed(R.WebhooksReply))
def get_webhooks(conn: ConnDep, role: AdminAuth) -> dict:
    """List webhooks with their delivery counts (secrets are not shown)."""
    return core.list_webhooks(conn)


@router.post("/admin/webhooks/{webhook_id}/deactivate", **typed(R.WebhookActiveReply))
def deactivate_webhook(webhook_id: WebhookId, conn: ConnDep, role: AdminAuth) -> dict:
    """Stop sending to a webhook (idempotent); pending deliveries are dropped as failed by the worker."""
    with conn.transaction():
        return core.set_webhook_active(conn, webhook_id, False, actor=role)


@router.post("/admin/webhooks/{webhook_id}/activate", **typed(R.WebhookActiveReply))
def activate_webhook(webhook_id: WebhookId, conn: ConnDep, role: AdminAuth) -> dict:
    """Send to a webhook again (idempotent)."""
    with conn.transaction():
        return core.set_webhook_active(conn, webhook_id, True, actor=role)


@router.get("/admin/webhooks/{webhook_id}/deliveries", **typed(R.DeliveriesReply))
def get_webhook_deliveries(webhook_id: WebhookId, conn: ConnDep, role: AdminAuth,
                           limit: Annotated[int, Query(ge=1, le=200)] = 50,
                           offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> dict:
    """The delivery log of a webhook, newest first, with every attempt."""
    return core.webhook_deliveries(conn, webhook_id, limit, offset)


@router.patch("/models/{model_id}", **typed(R.ModelPatchReply))
def patch_model(model_id: ModelId, body: core.ModelPatch, conn: ConnDep, role: AdminAuth) -> dict:
    """Edit a model: display name, owner, parameter count, pinned, type."""
    with conn.transaction():
        return core.patch_model(conn, model_id, body, actor=role)


@router.delete("/models/{model_id}", **typed(R.DeleteReply))
def delete_model(model_id: ModelId, conn: ConnDep, role: AdminAuth) -> dict:
    """Delete a model and everything hanging off it; the reply counts the deleted rows of each kind."""
    with conn.transaction():
        return core.delete_model(conn, model_id, actor=role)


@router.delete("/checkpoints/{checkpoint_id}", **typed(R.DeleteReply))
def delete_checkpoint(checkpoint_id: CheckpointId, conn: ConnDep, role: AdminAuth) -> dict:
    """Delete a checkpoint (id or alias) and its runs; the reply counts the deleted rows of each kind."""
    with conn.transaction():
        return core.delete_checkpoint(conn, checkpoint_id, actor=role)
