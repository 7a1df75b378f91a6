-- v_results: grain = one row per checkpoint × dataset × metric of the current eval run.
-- The seed's "result" shape (formats.md §6) plus step, model, run status and whether the metric is a score.
create or replace view v_results as
select r.checkpoint_id, r.dataset_name, e.metric_name, e.metric_value, e.is_primary, r.eval_config,
       r.eval_run_id, r.sample_count, e.ci_lower, e.ci_upper, e.stderr, e.ingested_at,
       c.training_step, r.model_id, r.status, e.is_score, e.value_note, e.metric_order, e.n_samples
from eval_runs r
join checkpoints c on c.checkpoint_id = r.checkpoint_id
join eval_results e on e.eval_run_id = r.eval_run_id
where r.is_current;
