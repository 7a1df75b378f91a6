-- v_heatmap_cells: grain = one row per model × dataset that has at least one current eval run.
-- The cell's status comes from the newest evaluated checkpoint (any run status):
-- its run status, or 'stale' when it is completed but older than the model's latest checkpoint.
-- The score is the latest valued one (as v_latest_scores), with the checkpoint and step it comes
-- from and the run's example sums (for a bootstrap interval).
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
-- Key lookups per cell (offset 0 keeps the planner from scanning score_facts whole instead).
cross join lateral (select * from score_facts f where f.eval_run_id = d.newest_run_id offset 0) nw
left join (
  select c.model_id, max(c.training_step) as latest_step from checkpoints c group by c.model_id
) ms on ms.model_id = d.model_id
left join lateral (select * from score_facts f where f.eval_run_id = d.latest_run_id offset 0) l on true
left join lateral (select * from example_run_stats s where s.eval_run_id = d.latest_run_id offset 0) x on true;
