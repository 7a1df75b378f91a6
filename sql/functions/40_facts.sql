-- The read-side facts as a whole (20_score_facts.sql, 30_model_dataset_facts.sql, 10_example_facts.sql hold
-- each one's upkeep): draining the queue of runs whose facts a write changed (facts_pending), the
-- triggers of the tables the facts copy a column from, and rebuilding everything from the base tables.
-- Re-applied by every `eval360 migrate`.

-- Re-derive the facts of queued runs (all of them, or at most p_limit, oldest first).
-- A flush holds advisory lock 360000002 exclusively; every writer (eval360_store_results) holds it
-- shared until it commits. So a flush waits for the writes in flight and runs alone: it never
-- re-derives facts from data a write is about to change, two flushes never refresh the same rows,
-- and a reader that waited finds the queue drained. With p_wait false it gives up at once when the
-- lock is taken (returns -1): an ingest transaction that judges alerts inline (holding the lock
-- shared itself) must not wait for the other writers.
create or replace function eval360_flush_facts(p_limit integer default null, p_wait boolean default true) returns integer
language plpgsql as $$
declare
  ids text[];
begin
  if not exists (select 1 from facts_pending) then
    return 0;
  end if;
  if p_wait then
    perform pg_advisory_xact_lock(360000002);
  elsif not pg_try_advisory_xact_lock(360000002) then
    return -1;
  end if;
  with d as (
    delete from facts_pending
     where eval_run_id in (select eval_run_id from facts_pending order by queued_at limit p_limit)
    returning eval_run_id)
  select array_agg(eval_run_id) into ids from d;
  if ids is null then
    return 0;
  end if;
  perform score_facts_refresh(ids);
  return cardinality(ids);
end $$;

-- Recompute every precomputed read fact from the base tables: after a bulk load that bypassed the
-- triggers (session_replication_role = replica).
create or replace function eval360_rebuild_read_facts() returns void language plpgsql as $$
begin
  delete from score_facts;
  perform score_facts_refresh(array(select eval_run_id from eval_runs where is_current));
  delete from model_dataset_facts;
  perform model_dataset_facts_refresh(
    array(select model_id from (select distinct model_id, dataset_name from score_facts) x
          order by model_id, dataset_name),
    array(select dataset_name from (select distinct model_id, dataset_name from score_facts) x
          order by model_id, dataset_name));
  delete from example_run_stats;
  insert into example_run_stats (eval_run_id, n_examples, n_graded, n_correct, score_sum, score_sumsq, n_fractional,
                                 present_bits, outcome_bits)
  select eval_run_id, count(*), count(score), count(*) filter (where is_correct),
         coalesce(sum(score), 0), coalesce(sum(score * score), 0), count(*) filter (where score > 0 and score < 1),
         eval360_bits(array_agg(example_idx), max(example_idx) + 1),
         eval360_bits(coalesce(array_agg(example_idx) filter (where coalesce(is_correct, score >= 0.5, false)), '{}'),
                      max(example_idx) + 1)
    from example_results group by eval_run_id;
end $$;

-- The columns the facts copy from other tables: a model's type and a checkpoint's training_step
-- (score_facts), a dataset's direction (the best run of model_dataset_facts). A change of a model or a
-- checkpoint re-derives facts only when it changes those: an update of a checkpoint's path, metadata or
-- tags, which every backfilled result makes, must not re-derive the facts of all its runs.
create or replace function facts_from_parents() returns trigger language plpgsql as $$
begin
  -- Statement triggers fire even when their statement changed no row (the store function runs its
  -- model, checkpoint and benchmark statements for every batch, mostly changing nothing).
  if not exists (select 1 from new_rows) then
    return null;
  end if;
  if tg_table_name = 'models' then
    perform score_facts_refresh(array(
      select r.eval_run_id from eval_runs r join new_rows n on n.model_id = r.model_id
        join old_rows o on o.model_id = n.model_id
       where r.is_current and n.model_type is distinct from o.model_type));
  elsif tg_table_name = 'checkpoints' then
    perform score_facts_refresh(array(
      select r.eval_run_id from eval_runs r join new_rows n on n.checkpoint_id = r.checkpoint_id
        join old_rows o on o.checkpoint_id = n.checkpoint_id
       where r.is_current and n.training_step is distinct from o.training_step));
  else  -- benchmark_metadata, inserted or updated
    perform model_dataset_facts_refresh(array_agg(d.model_id), array_agg(d.dataset_name))
       from model_dataset_facts d join new_rows n on n.dataset_name = d.dataset_name;
  end if;
  return null;
end $$;
