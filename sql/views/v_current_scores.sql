-- v_current_scores: grain = one row per checkpoint × dataset (its current eval run, any status).
-- The primary metric with n and the stored interval, the model's names and type, the dataset's
-- direction, and the run's example sums (null without example rows) for a bootstrap interval.
-- Reads score_facts (kept by triggers from eval_runs, eval_results, checkpoints and models).
create or replace view v_current_scores as
select f.eval_run_id, f.model_id, f.model_type, m.display_name, m.owner,
       f.checkpoint_id, f.training_step, f.dataset_name, f.status, f.run_created_at,
       f.metric_name, f.metric_value, f.value_note, f.is_score,
       coalesce(f.n, x.n_graded::int) as n,
       f.ci_lower, f.ci_upper, f.stderr,
       coalesce(b.is_higher_better, true) as is_higher_better,
       x.n_examples, x.n_graded, x.n_correct, x.score_sum, x.score_sumsq, x.n_fractional,
       (f.status = 'completed' and f.metric_value is not null and f.is_score) as is_scored
from score_facts f
join models m on m.model_id = f.model_id
left join benchmark_metadata b on b.dataset_name = f.dataset_name
left join example_run_stats x on x.eval_run_id = f.eval_run_id;
