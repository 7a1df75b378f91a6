-- 0002: what the read side needs beyond 0001.
--  * example_run_stats: per-run sums of example rows, kept by statement-level triggers, so a
--    heatmap or a diagnosis can put a bootstrap interval on hundreds of cells without
--    re-aggregating millions of example rows per request.
--  * indexes for the views' access paths.
--  * a statement timeout for the read-only role eval360_reader.

create table example_run_stats (
  eval_run_id  text primary key references eval_runs on delete cascade,
  n_examples   bigint not null default 0,
  n_graded     bigint not null default 0,            -- rows with a score
  n_correct    bigint not null default 0,            -- rows with is_correct
  score_sum    double precision not null default 0,
  score_sumsq  double precision not null default 0,
  n_fractional bigint not null default 0,            -- scores strictly between 0 and 1
  updated_at   timestamptz not null default now()
);

create function example_run_stats_add() returns trigger language plpgsql as $$
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
  return null;
end $$;

create function example_run_stats_sub() returns trigger language plpgsql as $$
begin
  -- Rows deleted by a cascade from eval_runs find no stats row left: nothing to do then.
  update example_run_stats s set
    n_examples = s.n_examples - d.n, n_graded = s.n_graded - d.ng, n_correct = s.n_correct - d.nc,
    score_sum = s.score_sum - d.ss, score_sumsq = s.score_sumsq - d.sq, n_fractional = s.n_fractional - d.nf,
    updated_at = now()
  from (select eval_run_id, count(*) n, count(score) ng, count(*) filter (where is_correct) nc,
               coalesce(sum(score), 0) ss, coalesce(sum(score * score), 0) sq,
               count(*) filter (where score > 0 and score < 1) nf
          from old_rows group by eval_run_id) d
  where s.eval_run_id = d.eval_run_id;
  delete from example_run_stats where n_examples <= 0;
  return null;
end $$;

create function example_run_stats_upd() returns trigger language plpgsql as $$
begin
  -- An update is a delete of the old rows plus an insert of the new ones.
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
  delete from example_run_stats where n_examples <= 0;
  return null;
end $$;

create trigger example_results_stats_ins after insert on example_results
  referencing new table as new_rows for each statement execute function example_run_stats_add();
create trigger example_results_stats_del after delete on example_results
  referencing old table as old_rows for each statement execute function example_run_stats_sub();
create trigger example_results_stats_upd after update on example_results
  referencing old table as old_rows new table as new_rows for each statement
  execute function example_run_stats_upd();

-- Rows that existed before this migration.
insert into example_run_stats (eval_run_id, n_examples, n_graded, n_correct, score_sum, score_sumsq, n_fractional)
select eval_run_id, count(*), count(score), count(*) filter (where is_correct),
       coalesce(sum(score), 0), coalesce(sum(score * score), 0), count(*) filter (where score > 0 and score < 1)
  from example_results group by eval_run_id;

-- Access paths of the views.
create index eval_runs_current_model_dataset on eval_runs (model_id, dataset_name) where is_current;
create index eval_runs_model_created on eval_runs (model_id, created_at);

-- The read-only role: queries by analysts are cut off after 5 s (operators may change it:
-- `alter role eval360_reader set statement_timeout = '10s'`). A login role made a member of
-- eval360_reader should get the same setting (docs/views.md).
do $$ begin
  alter role eval360_reader set statement_timeout = '5s';
  alter role eval360_reader set idle_in_transaction_session_timeout = '60s';
exception when insufficient_privilege then
  raise notice 'eval360_reader: no privilege to set its statement timeout; ask the database owner';
end $$;
