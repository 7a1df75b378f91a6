-- score_facts: one row per current eval run with its primary score, re-derived by score_facts_refresh()
-- from the base tables. Writes through eval360_store_results queue their runs in facts_pending (drained by
-- eval360_flush_facts, 40_facts.sql); any other writer (SQL by hand, admin updates, deletes) gets the
-- refresh from statement triggers on eval_runs and eval_results (they stand aside while
-- eval360.defer_facts is on: inside eval360_store_results, which queues the facts itself), and on
-- models and checkpoints (40_facts.sql). The triggers: 90_triggers.sql.
-- Re-applied by every `eval360 migrate`.

-- Re-derive the facts of the given runs from the base tables (insert, update or delete).
create or replace function score_facts_refresh(ids text[]) returns void language plpgsql as $$
begin
  delete from score_facts f
   where f.eval_run_id = any(ids)
     and not exists (select 1 from eval_runs r where r.eval_run_id = f.eval_run_id and r.is_current);
  insert into score_facts as f (eval_run_id, model_id, model_type, checkpoint_id, training_step, dataset_name,
                                status, run_created_at, metric_name, metric_value, value_note, is_score, n,
                                ci_lower, ci_upper, stderr, sample_count, eval_config, ingested_at, result_json)
  select r.eval_run_id, r.model_id, m.model_type, r.checkpoint_id, c.training_step, r.dataset_name, r.status,
         r.created_at, e.metric_name, e.metric_value, e.value_note, coalesce(e.is_score, false),
         coalesce(r.sample_count, e.n_samples), e.ci_lower, e.ci_upper, e.stderr,
         r.sample_count, r.eval_config, e.ingested_at,
         case when e.metric_name is not null then json_build_object(
           'checkpoint_id', r.checkpoint_id, 'dataset_name', r.dataset_name, 'metric_name', e.metric_name,
           'metric_value', e.metric_value, 'is_primary', true, 'eval_config', r.eval_config,
           'eval_run_id', r.eval_run_id, 'sample_count', r.sample_count, 'ci_lower', e.ci_lower,
           'ci_upper', e.ci_upper, 'stderr', e.stderr, 'ingested_at', e.ingested_at,
           'training_step', c.training_step, 'status', r.status, 'is_score', coalesce(e.is_score, false),
           'value_note', e.value_note)::text end
    from eval_runs r
    join models m on m.model_id = r.model_id
    join checkpoints c on c.checkpoint_id = r.checkpoint_id
    left join lateral (select * from eval_results e where e.eval_run_id = r.eval_run_id and e.is_primary
                       order by e.metric_order limit 1) e on true
   where r.eval_run_id = any(ids) and r.is_current
  on conflict (eval_run_id) do update set
    model_id = excluded.model_id, model_type = excluded.model_type, checkpoint_id = excluded.checkpoint_id,
    training_step = excluded.training_step, dataset_name = excluded.dataset_name, status = excluded.status,
    run_created_at = excluded.run_created_at, metric_name = excluded.metric_name,
    metric_value = excluded.metric_value, value_note = excluded.value_note, is_score = excluded.is_score,
    n = excluded.n, ci_lower = excluded.ci_lower, ci_upper = excluded.ci_upper, stderr = excluded.stderr,
    sample_count = excluded.sample_count, eval_config = excluded.eval_config, ingested_at = excluded.ingested_at,
    result_json = excluded.result_json
  where (f.*) is distinct from (excluded.*);
end $$;

-- One trigger function for the run and result triggers: rows added or changed (new_rows) or
-- removed (old_rows) name the runs whose facts to re-derive.
create or replace function score_facts_from_changed() returns trigger language plpgsql as $$
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
