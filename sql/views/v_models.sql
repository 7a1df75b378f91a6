-- v_models: grain = one row per model.
-- The model's columns plus its checkpoint count, latest checkpoint (highest step) and last eval time.
create or replace view v_models as
select m.model_id, m.display_name, m.model_type, m.owner, m.param_count, m.is_pinned, m.created_at,
       m.updated_at,
       coalesce(c.n_checkpoints, 0)::int as n_checkpoints,
       lc.checkpoint_id as latest_checkpoint_id,
       lc.training_step as latest_step,
       le.last_eval_at
from models m
left join lateral (
  select count(*) as n_checkpoints from checkpoints c where c.model_id = m.model_id
) c on true
left join lateral (
  select c.checkpoint_id, c.training_step from checkpoints c
   where c.model_id = m.model_id
   order by c.training_step desc nulls last, c.created_at desc, c.checkpoint_id desc
   limit 1
) lc on true
left join lateral (
  select max(r.created_at) as last_eval_at from eval_runs r where r.model_id = m.model_id
) le on true;
