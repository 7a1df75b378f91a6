-- v_datasets: grain = one row per dataset (named by a current eval run or by benchmark metadata).
-- Its benchmark metadata (category 'uncategorized' when none), how many models have a current run
-- on it and how many (model, checkpoint) scores it has. Counts come from model_dataset_facts.
create or replace view v_datasets as
with f as (
  select d.dataset_name, count(*) as n_models, sum(d.n_checkpoints_scored) as n_scores
    from model_dataset_facts d group by d.dataset_name
),
names as (
  select dataset_name from f union select dataset_name from benchmark_metadata
)
select n.dataset_name,
       coalesce(b.category, 'uncategorized') as category, b.subcategory, b.primary_metric,
       coalesce(b.is_higher_better, true) as is_higher_better, b.chance_level, b.description,
       coalesce(f.n_models, 0)::int as n_models, coalesce(f.n_scores, 0)::int as n_scores
from names n
left join f on f.dataset_name = n.dataset_name
left join benchmark_metadata b on b.dataset_name = n.dataset_name;
