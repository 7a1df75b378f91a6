-- v_score_choices: grain = one row per score_choice × model × dataset, and per step for 'step'.
-- The best or a given step's score of each model × dataset, written once (the latest is v_heatmap_cells):
--   'best': the best run's score (model_dataset_facts.best_run_id: the maximum, or the minimum where
--           lower is better, over the model's checkpoints: optimistic); the status is the cell's
--           (v_heatmap_cells: the newest evaluated checkpoint's, 'stale' when older than the model's
--           latest checkpoint); a cell with no scored run keeps its status and no score;
--   'step': every training checkpoint's current run at its step (at_step = that step, its own status);
--           a baseline has no step and takes part at every step (at_step null): its current run, a
--           scored one first, then the highest step.
-- metric_value is null where is_scored is false (no completed, valued score).
-- Readers choose one score_choice as a literal (the planner keeps only its branches) and, for 'step',
-- `at_step = <step> or at_step is null`: the heatmap (ingest_api/read/heatmap.py), and the step scores of
-- the leaderboard and category profiles (read/scores.py, with v_current_scores' other columns).
create or replace view v_score_choices as
select 'best'::text as score_choice, null::bigint as at_step, h.model_id, h.dataset_name, h.status,
       coalesce(s.eval_run_id, h.newest_eval_run_id) as eval_run_id, s.checkpoint_id, s.training_step,
       s.metric_name, s.metric_value, coalesce(s.n, x.n_graded::int) as n, s.ci_lower, s.ci_upper, s.stderr,
       x.n_graded, x.score_sum, x.score_sumsq, x.n_fractional, (s.metric_value is not null) as is_scored
from v_heatmap_cells h
left join score_facts s on s.eval_run_id = h.best_run_id
left join example_run_stats x on x.eval_run_id = h.best_run_id
union all
select 'step', c.training_step, c.model_id, c.dataset_name, c.status, c.eval_run_id, c.checkpoint_id,
       c.training_step, c.metric_name, case when c.is_scored then c.metric_value end, c.n, c.ci_lower,
       c.ci_upper, c.stderr, c.n_graded, c.score_sum, c.score_sumsq, c.n_fractional, c.is_scored
from v_current_scores c
where c.model_type <> 'baseline' and c.training_step is not null
union all
select 'step', null, b.* from (
  select distinct on (c.model_id, c.dataset_name)
         c.model_id, c.dataset_name, c.status, c.eval_run_id, c.checkpoint_id, c.training_step, c.metric_name,
         case when c.is_scored then c.metric_value end, c.n, c.ci_lower, c.ci_upper, c.stderr, c.n_graded,
         c.score_sum, c.score_sumsq, c.n_fractional, c.is_scored
  from v_current_scores c
  where c.model_type = 'baseline'
  order by c.model_id, c.dataset_name, c.is_scored desc, c.training_step desc nulls last
) b;
