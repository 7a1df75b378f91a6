-- v_datasets: one row per dataset (named by an eval run or by benchmark metadata).
-- Its benchmark metadata (category 'uncategorized' when none), how many models and checkpoints
-- have a current run on it, and when it was last evaluated.
create or replace view v_datasets as
with runs as (
  select r.dataset_name, count(distinct r.model_id) as n_models, count(*) as n_runs,
         max(r.created_at) as last_eval_at
    from eval_runs r where r.is_current group by r.dataset_name
),
names as (
  select dataset_name from runs union select dataset_name from benchmark_metadata
)
select n.dataset_name,
       coalesce(b.category, 'uncategorized') as category, b.subcategory, b.primary_metric,
       coalesce(b.is_higher_better, true) as is_higher_better, b.chance_level, b.description,
       coalesce(r.n_models, 0)::int as n_models, coalesce(r.n_runs, 0)::int as n_runs, r.last_eval_at
from names n
left join runs r on r.dataset_name = n.dataset_name
left join benchmark_metadata b on b.dataset_name = n.dataset_name;
