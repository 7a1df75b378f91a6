-- 0006: the write path pays for the read-side facts (0002) once per eval result, not once per
-- statement. Inside eval360_store_result (and the batch endpoint), eval360.defer_facts = 'on' for
-- the transaction: the statement triggers on eval_runs / eval_results then do nothing, and the
-- writer calls score_facts_refresh() once for the runs it touched. Any other writer (SQL by hand,
-- admin updates, deletes) still gets the triggers' refresh.

-- One trigger function for the run and result triggers: rows added or changed (new_rows) or
-- removed (old_rows) name the runs whose facts to re-derive.
create function score_facts_from_changed() returns trigger language plpgsql as $$
begin
  if current_setting('eval360.defer_facts', true) = 'on' then
    return null;
  end if;
  if tg_op = 'DELETE' then
    perform score_facts_refresh(array(select distinct eval_run_id from old_rows));
  else
    perform score_facts_refresh(array(select distinct eval_run_id from new_rows));
  end if;
  return null;
end $$;

drop trigger eval_runs_facts_ins on eval_runs;
drop trigger eval_runs_facts_upd on eval_runs;
drop trigger eval_results_facts_ins on eval_results;
drop trigger eval_results_facts_upd on eval_results;
drop trigger eval_results_facts_del on eval_results;
drop function score_facts_from_runs();
drop function score_facts_from_results_new();
drop function score_facts_from_results_old();

create trigger eval_runs_facts_ins after insert on eval_runs
  referencing new table as new_rows for each statement execute function score_facts_from_changed();
create trigger eval_runs_facts_upd after update on eval_runs
  referencing new table as new_rows for each statement execute function score_facts_from_changed();
create trigger eval_results_facts_ins after insert on eval_results
  referencing new table as new_rows for each statement execute function score_facts_from_changed();
create trigger eval_results_facts_upd after update on eval_results
  referencing new table as new_rows for each statement execute function score_facts_from_changed();
create trigger eval_results_facts_del after delete on eval_results
  referencing old table as old_rows for each statement execute function score_facts_from_changed();

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
