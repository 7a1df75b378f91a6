-- v_model_dataset_scores: grain = one row per model × dataset with a score × score choice ('latest', 'best').
-- The score a choice picks for the model × dataset, with the model's names, the dataset's direction
-- and the run's example sums: 'latest' is the score at the model's highest-step checkpoint that has
-- a completed, valued primary score; 'best' the best of them (max, or min where lower is better: a
-- maximum over noisy values, so optimistic). n_checkpoints_scored says over how many checkpoints.
-- Which run each choice picks comes from model_dataset_facts (kept by triggers). v_latest_scores and
-- v_best_scores are its two halves; filter on score_choice.
create or replace view v_model_dataset_scores as
select d.model_id, d.dataset_name, s.model_type, s.display_name, s.owner,
       s.checkpoint_id, s.training_step, s.eval_run_id, s.metric_name, s.metric_value, s.n,
       s.ci_lower, s.ci_upper, s.stderr, s.is_higher_better,
       s.n_examples, s.n_graded, s.n_correct, s.score_sum, s.score_sumsq, s.n_fractional,
       d.n_checkpoints_scored::bigint as n_checkpoints_scored,
       c.score_choice
from model_dataset_facts d
cross join lateral (values ('latest'::text, d.latest_run_id), ('best'::text, d.best_run_id)) c(score_choice, eval_run_id)
-- A join on the run's key: filtered on model or dataset, one key lookup per row; the joins of
-- v_current_scores a reader does not use drop out of its plan.
join v_current_scores s on s.eval_run_id = c.eval_run_id;
