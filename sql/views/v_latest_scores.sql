-- v_latest_scores: grain = one row per model × dataset with a score.
-- The score at the model's highest-step checkpoint that has a completed, valued primary score
-- (score_choice 'latest'); n_checkpoints_scored counts the checkpoints scored on that dataset.
-- Which run that is comes from model_dataset_facts (kept by triggers).
create or replace view v_latest_scores as
select d.model_id, d.dataset_name, s.model_type, s.display_name, s.owner,
       s.checkpoint_id, s.training_step, s.eval_run_id, s.metric_name, s.metric_value, s.n,
       s.ci_lower, s.ci_upper, s.stderr, s.is_higher_better,
       s.n_examples, s.n_graded, s.n_correct, s.score_sum, s.score_sumsq, s.n_fractional,
       d.n_checkpoints_scored::bigint as n_checkpoints_scored,
       'latest'::text as score_choice
from model_dataset_facts d
-- A join on the run's key: filtered on model or dataset, one key lookup per row; the joins of
-- v_current_scores a reader does not use drop out of its plan.
join v_current_scores s on s.eval_run_id = d.latest_run_id;
