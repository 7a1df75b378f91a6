-- 0003: what the operational rules need beyond 0001 (alerts, promotion, webhooks).
--  * alerts.resolved_at: an alert whose condition no longer holds (a late backfill of an earlier
--    step changed its neighbours, a re-post changed a score) is resolved, not deleted, so the
--    open alerts are a pure function of the stored data whatever the posting order; the row
--    (and its acknowledgement) stays, and comes back to life if the condition holds again.
--  * alert_recheck: a queue of (checkpoint, dataset) cells whose alerts must be re-judged by the
--    worker. Written in the transaction that changed the data (never lost): by the ingest hook
--    (heals the rare race of two concurrent posts of one checkpoint that could not see each
--    other) and by a trigger on example_results (per-example rows usually arrive after the eval
--    result, and they turn an unpaired test into a paired one).

alter table alerts add column resolved_at timestamptz;
create index alerts_checkpoint on alerts (checkpoint_id);
create index alerts_open on alerts (created_at desc) where resolved_at is null;

create table alert_recheck (
  checkpoint_id text not null references checkpoints on delete cascade,
  dataset_name  text not null,
  reason        text not null default 'result',
  queued_at     timestamptz not null default now(),
  primary key (checkpoint_id, dataset_name)
);

create function alert_recheck_examples() returns trigger language plpgsql as $$
begin
  insert into alert_recheck (checkpoint_id, dataset_name, reason)
  select distinct r.checkpoint_id, r.dataset_name, 'examples'
    from (select distinct eval_run_id from new_rows) n
    join eval_runs r on r.eval_run_id = n.eval_run_id
  on conflict (checkpoint_id, dataset_name) do nothing;
  return null;
end $$;

create trigger example_results_alert_recheck after insert on example_results
  referencing new table as new_rows for each statement execute function alert_recheck_examples();

create index webhook_deliveries_webhook on webhook_deliveries (webhook_id, created_at desc);
