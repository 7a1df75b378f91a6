-- 0006: the write path pays for the read-side facts (0002) once per eval result, not once per
-- statement. Inside eval360_store_result (and the batch endpoint), eval360.defer_facts = 'on' for
-- the transaction: the statement triggers on eval_runs / eval_results then do nothing, and the
-- writer calls score_facts_refresh() once for the runs it touched. Any other writer (SQL by hand,
-- admin updates, deletes) still gets the triggers' refresh.

create or replace function score_facts_from_runs() returns trigger language plpgsql as $$
begin
  if current_setting('eval360.defer_facts', true) = 'on' then
    return null;
  end if;
  perform score_facts_refresh(array(select distinct eval_run_id from new_rows));
  return null;
end $$;

create or replace function score_facts_from_results_new() returns trigger language plpgsql as $$
begin
  if current_setting('eval360.defer_facts', true) = 'on' then
    return null;
  end if;
  perform score_facts_refresh(array(select distinct eval_run_id from new_rows));
  return null;
end $$;

create or replace function score_facts_from_results_old() returns trigger language plpgsql as $$
begin
  if current_setting('eval360.defer_facts', true) = 'on' then
    return null;
  end if;
  perform score_facts_refresh(array(select distinct eval_run_id from old_rows));
  return null;
end $$;

-- score_facts carries a checkpoint's training_step and nothing else of the checkpoint: an update of
-- its path, metadata or tags (every backfilled result merges its source path into the metadata)
-- must not re-derive the facts of all its runs.
drop trigger if exists checkpoints_facts_upd on checkpoints;

create or replace function score_facts_from_checkpoints() returns trigger language plpgsql as $$
begin
  perform score_facts_refresh(array(
    select r.eval_run_id from eval_runs r
      join new_rows n on n.checkpoint_id = r.checkpoint_id
      join old_rows o on o.checkpoint_id = n.checkpoint_id
     where r.is_current and n.training_step is distinct from o.training_step));
  return null;
end $$;

create trigger checkpoints_facts_upd after update on checkpoints
  referencing new table as new_rows old table as old_rows for each statement
  execute function score_facts_from_checkpoints();
