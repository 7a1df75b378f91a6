-- 0002 (read side, part 3): score_facts also carries the rest of the seed's result shape for the
-- primary metric (sample_count, eval_config, ingested_at), so a model's primary scores over all its
-- checkpoints (GET /api/models/{id}/scores, the default) read one table by one index.

alter table score_facts add column sample_count integer;
alter table score_facts add column eval_config jsonb not null default '{}';
alter table score_facts add column ingested_at timestamptz;
create index score_facts_model_step on score_facts (model_id, training_step, checkpoint_id, dataset_name);

create or replace function score_facts_refresh(ids text[]) returns void language plpgsql as $$
begin
  delete from score_facts f
   where f.eval_run_id = any(ids)
     and not exists (select 1 from eval_runs r where r.eval_run_id = f.eval_run_id and r.is_current);
  insert into score_facts as f (eval_run_id, model_id, model_type, checkpoint_id, training_step, dataset_name,
                                status, run_created_at, metric_name, metric_value, value_note, is_score, n,
                                ci_lower, ci_upper, stderr, sample_count, eval_config, ingested_at)
  select r.eval_run_id, r.model_id, m.model_type, r.checkpoint_id, c.training_step, r.dataset_name, r.status,
         r.created_at, e.metric_name, e.metric_value, e.value_note, coalesce(e.is_score, false),
         coalesce(r.sample_count, e.n_samples), e.ci_lower, e.ci_upper, e.stderr,
         r.sample_count, r.eval_config, e.ingested_at
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
    sample_count = excluded.sample_count, eval_config = excluded.eval_config, ingested_at = excluded.ingested_at
  where (f.*) is distinct from (excluded.*);
end $$;

select score_facts_refresh(array(select eval_run_id from eval_runs where is_current));
