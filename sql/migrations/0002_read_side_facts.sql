-- 0002 (read side, part 2): precomputed facts so the read views answer in milliseconds at
-- LLM360 scale (36,000 runs, 5,000,000 example rows) on a small machine.
--  * score_facts: one row per current eval run with its checkpoint's step, the model's type and
--    the primary metric, kept by triggers on eval_runs, eval_results, checkpoints and models.
--    The views read it instead of joining four tables on every request.
--  * model_dataset_facts: one row per model × dataset with its latest scored, best scored and
--    newest run, kept by triggers on score_facts and benchmark_metadata: a heatmap cell or a
--    leaderboard row is then a primary-key lookup, not a sort over the model's checkpoints.
--  * example_run_stats.present_bits / outcome_bits: bit i says whether example i exists / was
--    answered right, so a paired (McNemar) comparison of two runs is three bit_count()s instead
--    of a join of their example rows.

create table score_facts (
  eval_run_id    text primary key references eval_runs on delete cascade,
  model_id       text not null,
  model_type     text not null,
  checkpoint_id  text not null,
  training_step  bigint,
  dataset_name   text not null,
  status         text not null,
  run_created_at timestamptz not null,
  metric_name    text,
  metric_value   double precision,
  value_note     text,
  is_score       boolean not null default false,
  n              integer,
  ci_lower       double precision,
  ci_upper       double precision,
  stderr         double precision
);
create index score_facts_model_dataset on score_facts
  (model_id, dataset_name, training_step desc nulls last, run_created_at desc, checkpoint_id);
create index score_facts_dataset on score_facts (dataset_name);
create index score_facts_checkpoint on score_facts (checkpoint_id);

-- Re-derive the facts of the given runs from the base tables (insert, update or delete).
create function score_facts_refresh(ids text[]) returns void language plpgsql as $$
begin
  delete from score_facts f
   where f.eval_run_id = any(ids)
     and not exists (select 1 from eval_runs r where r.eval_run_id = f.eval_run_id and r.is_current);
  insert into score_facts as f (eval_run_id, model_id, model_type, checkpoint_id, training_step, dataset_name,
                                status, run_created_at, metric_name, metric_value, value_note, is_score, n,
                                ci_lower, ci_upper, stderr)
  select r.eval_run_id, r.model_id, m.model_type, r.checkpoint_id, c.training_step, r.dataset_name, r.status,
         r.created_at, e.metric_name, e.metric_value, e.value_note, coalesce(e.is_score, false),
         coalesce(r.sample_count, e.n_samples), e.ci_lower, e.ci_upper, e.stderr
    from eval_runs r
    join models m on m.model_id = r.model_id
    join checkpoints c on c.checkpoint_id = r.checkpoint_id
    left join lateral (select * from eval_results e where e.eval_run_id = r.eval_run_id and e.is_primary
                       order by e.metric_order limit 1) e on true
   where r.eval_run_id = any(ids) and r.is_current
  on conflict (eval_run_id) do update set
    model_id = excluded.model_id, model_type = excluded.model_type, checkpoint_id = excluded.checkpoint_id,
    training_step = excluded.training_step, dataset_name = excluded.dataset_name, status = excluded.status,
    run_created_at = excluded.run_created_at, metric_name = excluded.metric_name,
    metric_value = excluded.metric_value, value_note = excluded.value_note, is_score = excluded.is_score,
    n = excluded.n, ci_lower = excluded.ci_lower, ci_upper = excluded.ci_upper, stderr = excluded.stderr
  where (f.*) is distinct from (excluded.*);
end $$;

create function score_facts_from_runs() returns trigger language plpgsql as $$
begin
  perform score_facts_refresh(array(select distinct eval_run_id from new_rows));
  return null;
end $$;

create function score_facts_from_results_new() returns trigger language plpgsql as $$
begin
  perform score_facts_refresh(array(select distinct eval_run_id from new_rows));
  return null;
end $$;

create function score_facts_from_results_old() returns trigger language plpgsql as $$
begin
  perform score_facts_refresh(array(select distinct eval_run_id from old_rows));
  return null;
end $$;

create function score_facts_from_checkpoints() returns trigger language plpgsql as $$
begin
  perform score_facts_refresh(array(
    select r.eval_run_id from eval_runs r join new_rows n on n.checkpoint_id = r.checkpoint_id
     where r.is_current));
  return null;
end $$;

create function score_facts_from_models() returns trigger language plpgsql as $$
begin
  perform score_facts_refresh(array(
    select r.eval_run_id from eval_runs r
      join new_rows n on n.model_id = r.model_id
      join old_rows o on o.model_id = n.model_id
     where r.is_current and n.model_type is distinct from o.model_type));
  return null;
end $$;

create trigger eval_runs_facts_ins after insert on eval_runs
  referencing new table as new_rows for each statement execute function score_facts_from_runs();
create trigger eval_runs_facts_upd after update on eval_runs
  referencing new table as new_rows for each statement execute function score_facts_from_runs();
create trigger eval_results_facts_ins after insert on eval_results
  referencing new table as new_rows for each statement execute function score_facts_from_results_new();
create trigger eval_results_facts_upd after update on eval_results
  referencing new table as new_rows for each statement execute function score_facts_from_results_new();
create trigger eval_results_facts_del after delete on eval_results
  referencing old table as old_rows for each statement execute function score_facts_from_results_old();
create trigger checkpoints_facts_upd after update on checkpoints
  referencing new table as new_rows for each statement execute function score_facts_from_checkpoints();
create trigger models_facts_upd after update on models
  referencing new table as new_rows old table as old_rows for each statement
  execute function score_facts_from_models();


-- ------------------------------------------------------------------ example outcome bits

alter table example_run_stats add column present_bits varbit not null default '';
alter table example_run_stats add column outcome_bits varbit not null default '';

-- A bit string of length len with bit i set for every i in idx.
create function eval360_bits(idx int[], len int) returns varbit language sql immutable as $$
  select coalesce(string_agg(case when s.i is null then '0' else '1' end, '' order by g), '')::varbit
    from generate_series(0, len - 1) g
    left join (select distinct i from unnest(idx) i) s on s.i = g
$$;

-- b padded with zeros to length len (never shortened).
create function eval360_pad(b varbit, len int) returns varbit language sql immutable as $$
  select case when length(b) >= len then b else b || repeat('0', len - length(b))::varbit end
$$;

-- Called by the example triggers after the counts are adjusted: clear the bits of deleted rows,
-- then set those of inserted rows (an update is both).
create function example_run_bits_apply(p_old text[], p_old_idx int[], p_new text[], p_new_idx int[],
                                       p_new_ok boolean[]) returns void language plpgsql as $$
begin
  if p_old is not null then
    update example_run_stats s
       set present_bits = s.present_bits & ~eval360_bits(d.idx, length(s.present_bits)),
           outcome_bits = s.outcome_bits & ~eval360_bits(d.idx, length(s.present_bits))
      from (select run, array_agg(i) idx from unnest(p_old, p_old_idx) u(run, i) group by run) d
     where s.eval_run_id = d.run;
  end if;
  if p_new is not null then
    update example_run_stats s
       set present_bits = eval360_pad(s.present_bits, d.len) | eval360_bits(d.idx, d.len),
           outcome_bits = (eval360_pad(s.outcome_bits, d.len) & ~eval360_bits(d.idx, d.len))
                          | eval360_bits(d.ok, d.len)
      from (select u.run, array_agg(u.i) idx, coalesce(array_agg(u.i) filter (where u.ok), '{}') ok,
                   greatest(max(u.i) + 1, max(length(s2.present_bits))) len
              from unnest(p_new, p_new_idx, p_new_ok) u(run, i, ok)
              join example_run_stats s2 on s2.eval_run_id = u.run
             group by u.run) d
     where s.eval_run_id = d.run;
  end if;
end $$;

create or replace function example_run_stats_add() returns trigger language plpgsql as $$
begin
  insert into example_run_stats as s (eval_run_id, n_examples, n_graded, n_correct, score_sum, score_sumsq,
                                      n_fractional)
  select eval_run_id, count(*), count(score), count(*) filter (where is_correct),
         coalesce(sum(score), 0), coalesce(sum(score * score), 0),
         count(*) filter (where score > 0 and score < 1)
    from new_rows group by eval_run_id
  on conflict (eval_run_id) do update set
    n_examples = s.n_examples + excluded.n_examples, n_graded = s.n_graded + excluded.n_graded,
    n_correct = s.n_correct + excluded.n_correct, score_sum = s.score_sum + excluded.score_sum,
    score_sumsq = s.score_sumsq + excluded.score_sumsq, n_fractional = s.n_fractional + excluded.n_fractional,
    updated_at = now();
  perform example_run_bits_apply(null, null,
    array(select eval_run_id from new_rows), array(select example_idx from new_rows),
    array(select coalesce(is_correct, score >= 0.5, false) from new_rows));
  return null;
end $$;

create or replace function example_run_stats_sub() returns trigger language plpgsql as $$
begin
  update example_run_stats s set
    n_examples = s.n_examples - d.n, n_graded = s.n_graded - d.ng, n_correct = s.n_correct - d.nc,
    score_sum = s.score_sum - d.ss, score_sumsq = s.score_sumsq - d.sq, n_fractional = s.n_fractional - d.nf,
    updated_at = now()
  from (select eval_run_id, count(*) n, count(score) ng, count(*) filter (where is_correct) nc,
               coalesce(sum(score), 0) ss, coalesce(sum(score * score), 0) sq,
               count(*) filter (where score > 0 and score < 1) nf
          from old_rows group by eval_run_id) d
  where s.eval_run_id = d.eval_run_id;
  perform example_run_bits_apply(array(select eval_run_id from old_rows), array(select example_idx from old_rows),
                                 null, null, null);
  delete from example_run_stats where n_examples <= 0;
  return null;
end $$;

create or replace function example_run_stats_upd() returns trigger language plpgsql as $$
begin
  update example_run_stats s set
    n_examples = s.n_examples - d.n, n_graded = s.n_graded - d.ng, n_correct = s.n_correct - d.nc,
    score_sum = s.score_sum - d.ss, score_sumsq = s.score_sumsq - d.sq, n_fractional = s.n_fractional - d.nf
  from (select eval_run_id, count(*) n, count(score) ng, count(*) filter (where is_correct) nc,
               coalesce(sum(score), 0) ss, coalesce(sum(score * score), 0) sq,
               count(*) filter (where score > 0 and score < 1) nf
          from old_rows group by eval_run_id) d
  where s.eval_run_id = d.eval_run_id;
  insert into example_run_stats as s (eval_run_id, n_examples, n_graded, n_correct, score_sum, score_sumsq,
                                      n_fractional)
  select eval_run_id, count(*), count(score), count(*) filter (where is_correct),
         coalesce(sum(score), 0), coalesce(sum(score * score), 0),
         count(*) filter (where score > 0 and score < 1)
    from new_rows group by eval_run_id
  on conflict (eval_run_id) do update set
    n_examples = s.n_examples + excluded.n_examples, n_graded = s.n_graded + excluded.n_graded,
    n_correct = s.n_correct + excluded.n_correct, score_sum = s.score_sum + excluded.score_sum,
    score_sumsq = s.score_sumsq + excluded.score_sumsq, n_fractional = s.n_fractional + excluded.n_fractional,
    updated_at = now();
  perform example_run_bits_apply(array(select eval_run_id from old_rows), array(select example_idx from old_rows),
                                 array(select eval_run_id from new_rows), array(select example_idx from new_rows),
                                 array(select coalesce(is_correct, score >= 0.5, false) from new_rows));
  delete from example_run_stats where n_examples <= 0;
  return null;
end $$;

-- ------------------------------------------------------------------ model × dataset facts

create table model_dataset_facts (
  model_id             text not null references models on delete cascade,
  dataset_name         text not null,
  newest_run_id        text not null,   -- highest step, any status
  latest_run_id        text,            -- highest step with a completed, valued primary score
  best_run_id          text,            -- best valued primary score (max, or min where lower is better)
  n_checkpoints_scored integer not null default 0,
  primary key (model_id, dataset_name)
);
create index model_dataset_facts_dataset on model_dataset_facts (dataset_name);

create function model_dataset_facts_refresh(p_models text[], p_datasets text[]) returns void
language plpgsql as $$
begin
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

create function model_dataset_facts_from_new() returns trigger language plpgsql as $$
begin
  perform model_dataset_facts_refresh(array(select model_id from new_rows), array(select dataset_name from new_rows));
  return null;
end $$;

create function model_dataset_facts_from_old() returns trigger language plpgsql as $$
begin
  perform model_dataset_facts_refresh(array(select model_id from old_rows), array(select dataset_name from old_rows));
  return null;
end $$;

create function model_dataset_facts_from_upd() returns trigger language plpgsql as $$
begin
  perform model_dataset_facts_refresh(
    array(select model_id from new_rows union all select model_id from old_rows),
    array(select dataset_name from new_rows union all select dataset_name from old_rows));
  return null;
end $$;

create function model_dataset_facts_from_benchmarks() returns trigger language plpgsql as $$
begin
  perform model_dataset_facts_refresh(array(select d.model_id from model_dataset_facts d join new_rows n
                                              on n.dataset_name = d.dataset_name),
                                      array(select d.dataset_name from model_dataset_facts d join new_rows n
                                              on n.dataset_name = d.dataset_name));
  return null;
end $$;

create trigger score_facts_mdf_ins after insert on score_facts
  referencing new table as new_rows for each statement execute function model_dataset_facts_from_new();
create trigger score_facts_mdf_upd after update on score_facts
  referencing new table as new_rows old table as old_rows for each statement
  execute function model_dataset_facts_from_upd();
create trigger score_facts_mdf_del after delete on score_facts
  referencing old table as old_rows for each statement execute function model_dataset_facts_from_old();
create trigger benchmark_metadata_mdf_ins after insert on benchmark_metadata
  referencing new table as new_rows for each statement execute function model_dataset_facts_from_benchmarks();
create trigger benchmark_metadata_mdf_upd after update on benchmark_metadata
  referencing new table as new_rows for each statement execute function model_dataset_facts_from_benchmarks();

-- ------------------------------------------------------------------ rebuild

-- Recompute every precomputed read fact from the base tables: run at the end of this migration,
-- and after a bulk load that bypassed the triggers (session_replication_role = replica).
create function eval360_rebuild_read_facts() returns void language plpgsql as $$
begin
  delete from example_run_stats;
  insert into example_run_stats (eval_run_id, n_examples, n_graded, n_correct, score_sum, score_sumsq, n_fractional,
                                 present_bits, outcome_bits)
  select eval_run_id, count(*), count(score), count(*) filter (where is_correct),
         coalesce(sum(score), 0), coalesce(sum(score * score), 0), count(*) filter (where score > 0 and score < 1),
         eval360_bits(array_agg(example_idx), max(example_idx) + 1),
         eval360_bits(coalesce(array_agg(example_idx) filter (where coalesce(is_correct, score >= 0.5, false)), '{}'),
                      max(example_idx) + 1)
    from example_results group by eval_run_id;
  delete from score_facts;
  perform score_facts_refresh(array(select eval_run_id from eval_runs where is_current));
  delete from model_dataset_facts;
  perform model_dataset_facts_refresh(
    array(select model_id from (select distinct model_id, dataset_name from score_facts) x
          order by model_id, dataset_name),
    array(select dataset_name from (select distinct model_id, dataset_name from score_facts) x
          order by model_id, dataset_name));
end $$;

select eval360_rebuild_read_facts();
