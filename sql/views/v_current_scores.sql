-- v_current_scores: one row per checkpoint × dataset (its current eval run, any status).
-- The primary metric with n and the stored interval, the model's type, the dataset's direction,
-- and the run's example sums (null without example rows) for a bootstrap interval.
create or replace view v_current_scores as
select r.eval_run_id, r.model_id, m.model_type, m.display_name, m.owner,
       r.checkpoint_id, c.training_step, r.dataset_name, r.status, r.created_at as run_created_at,
       e.metric_name, e.metric_value, e.value_note,
       coalesce(e.is_score, false) as is_score,
       coalesce(r.sample_count, e.n_samples, x.n_graded::int) as n,
       e.ci_lower, e.ci_upper, e.stderr,
       coalesce(b.is_higher_better, true) as is_higher_better,
       x.n_examples, x.n_graded, x.n_correct, x.score_sum, x.score_sumsq, x.n_fractional,
       (r.status = 'completed' and e.metric_value is not null and coalesce(e.is_score, false)) as is_scored
from eval_runs r
join models m on m.model_id = r.model_id
join checkpoints c on c.checkpoint_id = r.checkpoint_id
left join eval_results e on e.eval_run_id = r.eval_run_id and e.is_primary
left join benchmark_metadata b on b.dataset_name = r.dataset_name
left join example_run_stats x on x.eval_run_id = r.eval_run_id
where r.is_current;
