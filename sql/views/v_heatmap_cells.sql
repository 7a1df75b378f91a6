-- v_heatmap_cells: grain = one row per model × dataset that has at least one current eval run.
-- The cell's status comes from the newest evaluated checkpoint (any run status):
-- its run status, or 'stale' when it is completed but older than the model's latest checkpoint.
-- The score is the latest valued one (as v_latest_scores), with the checkpoint and step it comes
-- from and the run's example sums (for a bootstrap interval).
-- Plain joins on primary keys (not lateral subqueries): filtered on model_id / dataset_name the
-- planner looks each cell up by key, and a reader that does not use the score or example
-- columns has those joins removed from its plan (the best-score heatmap reads only the status).
create or replace view v_heatmap_cells as
select d.model_id, d.dataset_name, nw.model_type,
       nw.checkpoint_id as newest_checkpoint_id, nw.training_step as newest_step,
       nw.eval_run_id as newest_eval_run_id, nw.status as newest_status,
       ms.latest_step as model_latest_step,
       case
         when nw.status <> 'completed' then nw.status
         when nw.model_type = 'training' and nw.training_step < ms.latest_step then 'stale'
         else 'completed'
       end as status,
       l.checkpoint_id as score_checkpoint_id, l.training_step as score_step, l.eval_run_id as score_eval_run_id,
       l.metric_name, l.metric_value, coalesce(l.n, x.n_graded::int) as n, l.ci_lower, l.ci_upper, l.stderr,
       d.n_checkpoints_scored::bigint as n_checkpoints_scored, d.best_run_id,
       x.n_examples, x.n_graded, x.n_correct, x.score_sum, x.score_sumsq, x.n_fractional
from model_dataset_facts d
join score_facts nw on nw.eval_run_id = d.newest_run_id
-- each model's highest step (one backward index probe per model)
left join (
  select m.model_id, (select max(c.training_step) from checkpoints c where c.model_id = m.model_id) as latest_step
  from models m
) ms on ms.model_id = d.model_id
left join score_facts l on l.eval_run_id = d.latest_run_id
left join example_run_stats x on x.eval_run_id = d.latest_run_id;
