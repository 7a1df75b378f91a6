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
