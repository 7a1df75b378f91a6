-- alert_recheck: example rows arriving for a run queue its (checkpoint, dataset) for the worker's
-- re-judgement (they turn an unpaired test into a paired one). The trigger: 90_triggers.sql.
-- Re-applied by every `eval360 migrate`.

create or replace function alert_recheck_examples() returns trigger language plpgsql as $$
begin
  insert into alert_recheck (checkpoint_id, dataset_name, reason)
  select distinct r.checkpoint_id, r.dataset_name, 'examples'
    from (select distinct eval_run_id from new_rows) n
    join eval_runs r on r.eval_run_id = n.eval_run_id
  on conflict (checkpoint_id, dataset_name) do nothing;
  return null;
end $$;
