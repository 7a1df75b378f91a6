-- v_best_scores: grain = one row per model × dataset with a score.
-- The best primary score over the model's checkpoints (max, or min where lower is better):
-- a maximum over noisy values, so optimistic; n_checkpoints_scored says over how many it was taken.
-- Which run that is comes from model_dataset_facts (kept by triggers).
create or replace view v_best_scores as
select d.model_id, d.dataset_name, s.model_type, s.display_name, s.owner,
       s.checkpoint_id, s.training_step, s.eval_run_id, s.metric_name, s.metric_value, s.n,
       s.ci_lower, s.ci_upper, s.stderr, s.is_higher_better,
       s.n_examples, s.n_graded, s.n_correct, s.score_sum, s.score_sumsq, s.n_fractional,
       d.n_checkpoints_scored::bigint as n_checkpoints_scored,
       'best'::text as score_choice
from model_dataset_facts d
-- A join on the run's key (one key lookup per row when filtered on model or dataset).
join v_current_scores s on s.eval_run_id = d.best_run_id;
