-- v_checkpoints: grain = one row per checkpoint.
-- The checkpoint's columns plus counts of its current eval runs (all, completed) and its last eval time.
create or replace view v_checkpoints as
select c.checkpoint_id, c.model_id, c.training_step, c.checkpoint_path, c.metadata, c.training_run,
       c.recipe_tags, c.created_at, c.updated_at,
       coalesce(r.n_datasets, 0)::int as n_datasets,
       coalesce(r.n_completed, 0)::int as n_completed,
       r.last_eval_at
from checkpoints c
left join lateral (
  select count(*) as n_datasets, count(*) filter (where r.status = 'completed') as n_completed,
         max(r.created_at) as last_eval_at
    from eval_runs r where r.checkpoint_id = c.checkpoint_id and r.is_current
) r on true;
