-- model_dataset_facts: per model × dataset, its newest, latest scored and best scored run, kept by
-- triggers on score_facts (and on benchmark_metadata, a dataset's direction: 40_facts.sql); the
-- triggers: 90_triggers.sql.
-- Re-applied by every `eval360 migrate`.

-- Concurrent writers of the same model × dataset (two checkpoints of one model posted at once) are
-- serialised: both would otherwise delete and re-insert the same fact row and collide on its key.
create or replace function model_dataset_facts_refresh(p_models text[], p_datasets text[]) returns void
language plpgsql as $$
declare
  k record;
begin
  -- Writers of different checkpoints of the same model × dataset are not serialised by ingest:
  -- take a lock per pair (in a fixed order, so two writers cannot deadlock). Each statement below
  -- then sees what a writer that held the lock before committed.
  for k in select distinct u.m, u.ds from unnest(p_models, p_datasets) u(m, ds) order by 1, 2 loop
    perform pg_advisory_xact_lock(hashtextextended(k.m || chr(31) || k.ds, 360360));
  end loop;
  delete from model_dataset_facts d
   using unnest(p_models, p_datasets) u(m, ds)
   where d.model_id = u.m and d.dataset_name = u.ds;
  insert into model_dataset_facts (model_id, dataset_name, newest_run_id, latest_run_id, best_run_id,
                                   n_checkpoints_scored)
  select u.m, u.ds, nw.eval_run_id, lt.eval_run_id, bs.eval_run_id, coalesce(cnt.n, 0)
    from (select distinct m, ds from unnest(p_models, p_datasets) x(m, ds)) u
    join lateral (select f.eval_run_id from score_facts f where f.model_id = u.m and f.dataset_name = u.ds
                   order by f.training_step desc nulls last, f.run_created_at desc, f.checkpoint_id
                   limit 1) nw on true
    left join lateral (select f.eval_run_id from score_facts f
                        where f.model_id = u.m and f.dataset_name = u.ds and f.status = 'completed'
                          and f.metric_value is not null and f.is_score
                        order by f.training_step desc nulls last, f.run_created_at desc, f.checkpoint_id
                        limit 1) lt on true
    left join lateral (select coalesce(b.is_higher_better, true) as hib from benchmark_metadata b
                        where b.dataset_name = u.ds) hb on true
    left join lateral (select f.eval_run_id from score_facts f
                        where f.model_id = u.m and f.dataset_name = u.ds and f.status = 'completed'
                          and f.metric_value is not null and f.is_score
                        order by case when coalesce(hb.hib, true) then f.metric_value else -f.metric_value end desc,
                                 f.training_step desc nulls last, f.checkpoint_id
                        limit 1) bs on true
    left join lateral (select count(*) as n from score_facts f
                        where f.model_id = u.m and f.dataset_name = u.ds and f.status = 'completed'
                          and f.metric_value is not null and f.is_score) cnt on true;
end $$;

create or replace function model_dataset_facts_from_new() returns trigger language plpgsql as $$
begin
  perform model_dataset_facts_refresh(array(select model_id from new_rows), array(select dataset_name from new_rows));
  return null;
end $$;

create or replace function model_dataset_facts_from_old() returns trigger language plpgsql as $$
begin
  perform model_dataset_facts_refresh(array(select model_id from old_rows), array(select dataset_name from old_rows));
  return null;
end $$;

create or replace function model_dataset_facts_from_upd() returns trigger language plpgsql as $$
begin
  perform model_dataset_facts_refresh(
    array(select model_id from new_rows union all select model_id from old_rows),
    array(select dataset_name from new_rows union all select dataset_name from old_rows));
  return null;
end $$;
