-- v_eval_runs: grain = one row per eval run (current or superseded).
-- Provenance (formats.md §4), the checkpoint's step, the model's names, the primary value and example counts.
create or replace view v_eval_runs as
select r.eval_run_id, r.checkpoint_id, r.model_id, m.display_name, m.model_type, m.owner, c.training_step,
       c.checkpoint_path, c.training_run, c.recipe_tags,
       r.dataset_name, r.status, r.is_current, r.primary_metric, e.metric_value as primary_value,
       e.ci_lower, e.ci_upper, e.stderr,
       r.sample_count, r.seed, r.harness_commit, r.grader_type, r.grader_version, r.prompt_template,
       r.dataset_version, r.dataset_split, r.error_message, r.eval_config, r.inference_config, r.metadata,
       r.source, r.created_at, r.updated_at,
       coalesce(x.n_examples, 0) as n_examples, coalesce(x.n_correct, 0) as n_correct,
       x.n_graded, x.score_sum, x.score_sumsq, x.n_fractional
from eval_runs r
join models m on m.model_id = r.model_id
join checkpoints c on c.checkpoint_id = r.checkpoint_id
left join eval_results e on e.eval_run_id = r.eval_run_id and e.is_primary
left join example_run_stats x on x.eval_run_id = r.eval_run_id;
