-- v_primary_results: grain = one row per checkpoint × dataset (its current eval run) with a primary metric.
-- The seed's result shape (formats.md §6) for the primary metric only, plus step, model and status:
-- the compact default of a model's scores. Reads score_facts; result_json is the same row as JSON text.
create or replace view v_primary_results as
select f.checkpoint_id, f.dataset_name, f.metric_name, f.metric_value, true as is_primary, f.eval_config,
       f.eval_run_id, f.sample_count, f.ci_lower, f.ci_upper, f.stderr, f.ingested_at,
       f.training_step, f.model_id, f.status, f.is_score, f.value_note, f.result_json
from score_facts f
where f.metric_name is not null;
