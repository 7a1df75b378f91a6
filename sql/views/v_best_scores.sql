-- v_best_scores: one row per model × dataset with a score.
-- The best primary score over the model's checkpoints (max, or min where lower is better):
-- a maximum over noisy values, so optimistic; n_checkpoints_scored says over how many it was taken.
create or replace view v_best_scores as
select distinct on (s.model_id, s.dataset_name)
       s.model_id, s.dataset_name, s.model_type, s.display_name, s.owner,
       s.checkpoint_id, s.training_step, s.eval_run_id, s.metric_name, s.metric_value, s.n,
       s.ci_lower, s.ci_upper, s.stderr, s.is_higher_better,
       s.n_examples, s.n_graded, s.n_correct, s.score_sum, s.score_sumsq, s.n_fractional,
       count(*) over (partition by s.model_id, s.dataset_name) as n_checkpoints_scored,
       'best'::text as score_choice
from v_current_scores s
where s.is_scored
order by s.model_id, s.dataset_name,
         case when s.is_higher_better then s.metric_value else -s.metric_value end desc,
         s.training_step desc nulls last, s.checkpoint_id;
