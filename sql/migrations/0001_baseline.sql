-- 0001: the baseline. Tables, indexes, sequences, types, the reader role and its grants: the schema
-- as it stood when the migrations before it were squashed into this one (nothing had been released).
--
-- Append-only from here on: an applied migration is never edited (`eval360 migrate` refuses to run
-- when an applied file's checksum changed); a change of schema is a new file, 0002_….sql and on.
-- Functions and triggers are not here: they live in sql/functions/ and the views in sql/views/,
-- both re-applied by every `eval360 migrate`. sql/schema.sql shows the result (`eval360 schema`).
--
-- Names: *_at timestamps, is_* booleans, n_* counts. Deleting a model or checkpoint cascades to
-- everything hanging off it, so nothing is left orphaned.

-- ------------------------------------------------------------------ the reader role

-- eval360_reader is the login role of ad-hoc SQL (the dashboard's SQL page, analysts' psql and
-- notebooks): SELECT on the views (granted by the migration runner each time it re-creates them) and
-- nothing else, member of no role, so there is no other identity to switch to (a role switch is
-- checked against the session user).
--
-- Roles are global to the server while this migration runs once per database, and on a shared
-- server many databases migrate at once: every change to the role below is made only when the role
-- differs from what it must be, and retried when a concurrent migration of another database made the
-- same change first (duplicate role, "tuple concurrently updated").
do $$
declare
  attempt integer := 0;
  r record;
begin
  loop
    begin
      if not exists (select 1 from pg_roles where rolname = 'eval360_reader') then
        create role eval360_reader login;
      end if;
      select * into r from pg_roles where rolname = 'eval360_reader';
      if not r.rolcanlogin then
        alter role eval360_reader login;
      end if;
      if r.rolsuper or r.rolcreaterole or r.rolcreatedb or r.rolreplication or r.rolbypassrls then
        alter role eval360_reader nosuperuser nocreaterole nocreatedb noreplication nobypassrls;
      end if;
      -- Defaults of every session of the role: analysts' queries are cut off after 5 s (operators may
      -- change it: `alter role eval360_reader set statement_timeout = '10s'`); an analyst may change
      -- them in a session, and the SQL page sets its own limits in each transaction as well.
      if r.rolconfig is null or not exists (select 1 from unnest(r.rolconfig) c where c like 'statement_timeout=%') then
        alter role eval360_reader set statement_timeout = '5s';
      end if;
      if r.rolconfig is null or not exists (select 1 from unnest(r.rolconfig) c
                                             where c like 'idle_in_transaction_session_timeout=%') then
        alter role eval360_reader set idle_in_transaction_session_timeout = '60s';
      end if;
      if r.rolconfig is null or not ('default_transaction_read_only=on' = any(r.rolconfig)) then
        alter role eval360_reader set default_transaction_read_only = on;
      end if;
      exit;
    exception when duplicate_object or unique_violation or internal_error then
      attempt := attempt + 1;
      if attempt >= 50 then
        raise;
      end if;
      perform pg_sleep(0.02 * attempt);
    end;
  end loop;

  -- Member of no role: a membership would hand its rights (or a SET ROLE target) to ad-hoc SQL.
  for r in select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid
            where m.member = (select oid from pg_roles where rolname = 'eval360_reader') loop
    execute format('revoke %I from eval360_reader', r.rolname);
  end loop;
  if exists (select 1 from pg_auth_members m join pg_roles u on u.oid = m.member and u.rolname = 'eval360_reader') then
    raise exception 'eval360_reader is still a member of another role: revoke it (deploy/README.md, "The reader role")';
  end if;
end $$;

-- ------------------------------------------------------------------ models, checkpoints, datasets

create table models (
  model_id      text primary key check (model_id <> ''),
  display_name  text not null,
  model_type    text not null default 'training' check (model_type in ('training', 'baseline')),
  owner         text not null default 'unknown',
  param_count   bigint check (param_count is null or param_count >= 0),
  is_pinned     boolean not null default false,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now()
);

create table checkpoints (
  checkpoint_id   text primary key,            -- canonical: {model_id}__step-{N} or {model_id}__baseline
  model_id        text not null references models on delete cascade,
  training_step   bigint check (training_step is null or training_step >= 0),
  checkpoint_path text,
  metadata        jsonb not null default '{}',
  training_run    text,
  recipe_tags     text[] not null default '{}',
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now()
);
create index checkpoints_model_step on checkpoints (model_id, training_step);

-- Every spelling a client has used for a checkpoint, mapped to the canonical id, within its model:
-- two models may both post `step-1000`. An alias equal to a real checkpoint id is never stored (a
-- checkpoint id is always looked up first).
create table checkpoint_aliases (
  alias         text not null,
  checkpoint_id text not null references checkpoints on delete cascade,
  created_at    timestamptz not null default now(),
  model_id      text not null,
  primary key (model_id, alias),
  constraint checkpoint_aliases_model_fk foreign key (model_id) references models on delete cascade
);
create index checkpoint_aliases_checkpoint on checkpoint_aliases (checkpoint_id);
create index checkpoint_aliases_alias on checkpoint_aliases (alias);

create table benchmark_metadata (
  dataset_name     text primary key,
  category         text,
  subcategory      text,
  primary_metric   text,
  is_higher_better boolean not null default true,
  chance_level     double precision,
  description      text,
  updated_at       timestamptz not null default now(),
  -- the size (in points) of a drop that can be a `critical` regression (null: EVAL360_ALERT_CRITICAL_POINTS)
  critical_drop_points double precision check (critical_drop_points is null or critical_drop_points > 0)
);

-- ------------------------------------------------------------------ results

-- One row per evaluation of one checkpoint on one dataset (provenance).
-- Several runs of the same (checkpoint, dataset) are kept; the newest is current.
create table eval_runs (
  eval_run_id      text primary key,
  checkpoint_id    text not null references checkpoints on delete cascade,
  model_id         text not null references models on delete cascade,
  dataset_name     text not null,
  status           text not null default 'completed'
                     check (status in ('pending', 'running', 'completed', 'failed', 'invalidated')),
  is_current       boolean not null default true,
  primary_metric   text,
  sample_count     integer check (sample_count is null or sample_count >= 0),
  seed             bigint,
  harness_commit   text,
  grader_type      text,
  grader_version   text,
  prompt_template  text,
  dataset_version  text,
  dataset_split    text not null default 'test',
  error_message    text,
  eval_config      jsonb not null default '{}',
  inference_config jsonb not null default '{}',
  metadata         jsonb not null default '{}',
  source           text not null default 'api',     -- api | backfill | demo
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  content_hash     text                             -- of the run's last posting (ingest.py): no activity for a repeat
);
create unique index eval_runs_one_current on eval_runs (checkpoint_id, dataset_name) where is_current;
create index eval_runs_model_dataset on eval_runs (model_id, dataset_name);
create index eval_runs_dataset on eval_runs (dataset_name);
create index eval_runs_current_model_dataset on eval_runs (model_id, dataset_name) where is_current;
create index eval_runs_model_created on eval_runs (model_id, created_at);

-- One row per metric of one eval run. metric_value is null when the grader wrote
-- nan/inf (value_note says which): "no value", kept rather than dropped.
create table eval_results (
  eval_run_id   text not null references eval_runs on delete cascade,
  metric_name   text not null,
  metric_value  double precision,
  value_note    text check (value_note in ('nan', 'inf', '-inf')),
  is_primary    boolean not null default false,
  is_score      boolean not null default true,   -- false for spread figures (bootstrap_std …)
  metric_order  smallint not null default 0,
  n_samples     integer,
  ci_lower      double precision,
  ci_upper      double precision,
  stderr        double precision,
  ingested_at   timestamptz not null default now(),
  primary key (eval_run_id, metric_name)
);
create index eval_results_primary on eval_results (eval_run_id) where is_primary;

-- One row per example of one eval run. score in [0,1] (mean of per-generation grades).
create table example_results (
  id             bigint generated by default as identity primary key,
  eval_run_id    text not null references eval_runs on delete cascade,
  example_idx    integer not null check (example_idx >= 0),
  is_correct     boolean,
  score          double precision check (score is null or (score >= 0 and score <= 1)),
  input_preview  text,
  output_preview text,
  ground_truth   text,
  error_tag      text,
  topic          text,
  difficulty     text,
  subtask        text,
  metadata       jsonb,
  unique (eval_run_id, example_idx)
);

-- ------------------------------------------------------------------ read-side facts (kept by sql/functions/)

-- Per-run sums of example rows, kept by statement triggers on example_results, so a heatmap or a
-- diagnosis can put a bootstrap interval on hundreds of cells without re-aggregating millions of
-- example rows per request. present_bits / outcome_bits: bit i says whether example i exists / was
-- answered right, so a paired (McNemar) comparison of two runs is three bit_count()s.
create table example_run_stats (
  eval_run_id  text primary key references eval_runs on delete cascade,
  n_examples   bigint not null default 0,
  n_graded     bigint not null default 0,            -- rows with a score
  n_correct    bigint not null default 0,            -- rows with is_correct
  score_sum    double precision not null default 0,
  score_sumsq  double precision not null default 0,
  n_fractional bigint not null default 0,            -- scores strictly between 0 and 1
  updated_at   timestamptz not null default now(),
  present_bits varbit not null default '',
  outcome_bits varbit not null default ''
);

-- Per-run slice counts (run × dimension × slice value: the rows of v_example_slices), kept by
-- statement triggers on example_results, so a slice trend reads ~100 × (slice values) rows instead
-- of grouping ~125,000 example rows per request.
create table example_slice_stats (
  eval_run_id  text not null references eval_runs on delete cascade,
  dimension    text not null check (dimension in ('topic', 'difficulty', 'subtask')),
  slice        text not null,                     -- 'unspecified' for a missing label
  n_examples   bigint not null default 0,
  n_correct    bigint not null default 0,         -- is_correct, else score >= 0.5
  n_graded     bigint not null default 0,         -- rows with a score
  score_sum    double precision not null default 0,
  score_sumsq  double precision not null default 0,
  n_fractional bigint not null default 0,         -- scores strictly between 0 and 1
  primary key (eval_run_id, dimension, slice)
);

-- One row per current eval run with its checkpoint's step, the model's type and the primary metric
-- (and the seed's result shape for it, also as JSON text), so the views read one table instead of
-- joining four on every request.
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
  stderr         double precision,
  sample_count   integer,
  eval_config    jsonb not null default '{}',
  ingested_at    timestamptz,
  result_json    text
);
create index score_facts_model_dataset on score_facts
  (model_id, dataset_name, training_step desc nulls last, run_created_at desc, checkpoint_id);
create index score_facts_dataset on score_facts (dataset_name);
create index score_facts_checkpoint on score_facts (checkpoint_id);
create index score_facts_model_step on score_facts (model_id, training_step, checkpoint_id, dataset_name);

-- One row per model × dataset with its latest scored, best scored and newest run: a heatmap cell or
-- a leaderboard row is a primary-key lookup, not a sort over the model's checkpoints.
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

-- The runs whose facts a write changed, queued in the writing transaction and drained by
-- eval360_flush_facts() (every reader first, and the API's background drainer). A queue: rows live
-- for milliseconds; vacuum it often so probing it stays cheap.
create table facts_pending (
  eval_run_id text primary key,
  queued_at   timestamptz not null default now()
) with (autovacuum_vacuum_threshold = 200, autovacuum_vacuum_scale_factor = 0);

-- A change counter for readers that cache (the dashboard): advanced once per write statement on a
-- shown table (sql/functions/data_version.sql). A sequence, not a counter row: nextval never blocks.
create sequence eval360_data_version;

-- ------------------------------------------------------------------ the input of eval360_store_results

-- One posted result as ingest.py prepares it: validated, normalised, with everything that does not
-- depend on stored state decided (both candidate canonical ids, derived run ids, metric rows), the
-- posted training_step, the model ids the posted checkpoint id starts with (`{model}__…`, other than
-- the posting model) and the content hash.
create type eval360_result_in as (
  i integer, model_id text, display_name text, owner text, model_type text, model_type_explicit boolean,
  param_count bigint, checkpoint_id text, cid_training text, step_training bigint, cid_baseline text,
  eval_run_id text, run_training text, run_baseline text, dataset_name text, checkpoint_path text,
  metadata jsonb, training_run text, recipe_tags text[], status text, primary_metric text,
  sample_count integer, seed bigint, harness_commit text, grader_type text, grader_version text,
  prompt_template text, dataset_version text, dataset_split text, error_message text,
  eval_config jsonb, inference_config jsonb, source text, category text, subcategory text,
  record_activity boolean, actor text, primary_shown text, primary_value jsonb, metrics jsonb,
  training_step bigint, id_models text[], content_hash text);

-- What the stored state decided for it.
create type eval360_result_at as (
  i integer, model_type text, cid text, step bigint, run text, dataset_name text,
  is_new boolean, is_current boolean);

-- ------------------------------------------------------------------ operations

create table suites (
  suite_id      text primary key check (suite_id <> ''),
  display_name  text not null,
  description   text,
  dataset_names text[] not null default '{}',
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now()
);

-- An alert whose condition no longer holds is resolved (resolved_at), not deleted, so the open alerts
-- are a pure function of the stored data whatever the posting order; the row (and its
-- acknowledgement) stays, and comes back to life if the condition holds again.
create table alerts (
  id              bigint generated by default as identity primary key,
  alert_type      text not null,
  model_id        text references models on delete cascade,
  checkpoint_id   text references checkpoints on delete cascade,
  dataset_name    text,
  severity        text not null check (severity in ('critical', 'warning', 'info')),
  message         text not null,
  detail          jsonb not null default '{}',
  is_acknowledged boolean not null default false,
  acknowledged_by text,
  acknowledged_at timestamptz,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  resolved_at     timestamptz
);
-- No duplicate alert for the same (type, checkpoint, dataset) when results are re-posted.
create unique index alerts_once on alerts (alert_type, checkpoint_id, dataset_name) nulls not distinct;
create index alerts_model on alerts (model_id, created_at desc);
create index alerts_checkpoint on alerts (checkpoint_id);
create index alerts_open on alerts (created_at desc) where resolved_at is null;

-- The (checkpoint, dataset) cells whose alerts the worker must re-judge, oldest first. Written in the
-- transaction that changed the data (never lost): by the store function and by a trigger on
-- example_results (per-example rows usually arrive after the eval result).
create table alert_recheck (
  checkpoint_id text not null references checkpoints on delete cascade,
  dataset_name  text not null,
  reason        text not null default 'result',
  queued_at     timestamptz not null default now(),
  primary key (checkpoint_id, dataset_name)
);
create index alert_recheck_queued on alert_recheck (queued_at);

-- The activity feed (one writer: the events of ingest, admin changes, alerts, promotions). An event
-- about a model or a checkpoint goes with it when it is deleted.
create table activity (
  id            bigint generated by default as identity primary key,
  event_type    text not null,
  model_id      text,
  checkpoint_id text,
  dataset_name  text,
  actor         text,
  summary       text not null,
  detail        jsonb not null default '{}',
  created_at    timestamptz not null default now(),
  foreign key (model_id) references models on delete cascade,
  foreign key (checkpoint_id) references checkpoints on delete cascade
);
create index activity_created on activity (created_at desc);
create index activity_model on activity (model_id, created_at desc);

create table webhooks (
  id          bigint generated by default as identity primary key,
  url         text not null check (url ~* '^https?://'),
  events      text[] not null default '{regression,improvement,new_best,promotion_ready}',
  secret      text not null,
  is_active   boolean not null default true,
  description text,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);

-- Outbox: one row per (event, webhook), written in the transaction that raised the event, drained by
-- the worker. 'withdrawn': a regression event whose alert was resolved before its quiet period ended
-- is never sent (the row stays, with the reason, for the record).
create table webhook_deliveries (
  id              bigint generated by default as identity primary key,
  webhook_id      bigint not null references webhooks on delete cascade,
  event_type      text not null,
  payload         jsonb not null,
  status          text not null default 'pending'
                    check (status in ('pending', 'delivered', 'failed', 'withdrawn')),
  n_attempts      integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_status_code integer,
  last_error      text,
  created_at      timestamptz not null default now(),
  delivered_at    timestamptz
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_webhook on webhook_deliveries (webhook_id, created_at desc);

create table webhook_delivery_attempts (
  id           bigint generated by default as identity primary key,
  delivery_id  bigint not null references webhook_deliveries on delete cascade,
  attempted_at timestamptz not null default now(),
  status_code  integer,
  error        text,
  duration_ms  double precision
);
create index webhook_delivery_attempts_delivery on webhook_delivery_attempts (delivery_id);

-- Checkpoints that passed their rules (first time each), for "previous promoted".
create table promotions (
  checkpoint_id text primary key references checkpoints on delete cascade,
  model_id      text not null references models on delete cascade,
  detail        jsonb not null default '{}',
  promoted_at   timestamptz not null default now()
);

-- The rules a training checkpoint must pass to be promoted.
create table promotion_rules (
  rule_name         text primary key check (rule_name <> ''),
  model_id          text references models on delete cascade,   -- null: every training model
  suite_id          text references suites on delete set null,
  dataset_names     text[] not null default '{}',
  min_scores        jsonb not null default '{}',                 -- {dataset: number}
  min_category_scores jsonb not null default '{}',               -- {category: number}
  baseline_model_id text references models on delete set null,
  baseline_margin   double precision,
  no_regressions    boolean not null default true,
  description       text,
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now()
);

-- ------------------------------------------------------------------ privileges in this database

-- The reader sees nothing but the views (granted by the runner after it re-creates them).
-- Functions are executable by PUBLIC by default; Eval360's own write the tables (the facts, the
-- store): only the owner calls them. The runner revokes EXECUTE on them again each time it
-- re-creates them (sql/functions/) and grants the reader those the views call.
do $$
declare
  s text := current_schema();
begin
  execute format('revoke all on all tables in schema %I from eval360_reader', s);
  execute format('revoke all on all sequences in schema %I from eval360_reader', s);
  execute format('revoke create on schema %I from public', s);
  execute format('grant usage on schema %I to eval360_reader', s);
end $$;
alter default privileges revoke execute on routines from public;

-- DO blocks and new PL/pgSQL functions need USAGE on the language, which PUBLIC has by default:
-- keep it for the runner, take it from everyone else. Only the language's owner can change that (a
-- superuser; on a managed server, nothing changes and this is a no-op).
do $$ begin
  if (select pg_has_role(current_user, l.lanowner, 'usage') from pg_language l where l.lanname = 'plpgsql') then
    grant usage on language plpgsql to current_user;
    revoke usage on language plpgsql from public;
  end if;
exception when insufficient_privilege then
  raise notice 'plpgsql: cannot revoke its use from PUBLIC (not its owner); the reader role may run DO blocks';
end $$;

-- Two built-in families PUBLIC may execute that let an ad-hoc session harm everyone else, whatever it
-- can read: advisory locks (a session holding lock 360000002 would stop every write and every flush
-- of the facts) and creating large objects (which outlive the session: the disk fills up). Kept for
-- the users that own Eval360's data (the runner, the database owner, the tables' owners), taken from
-- everyone else. Only a superuser can change built-in functions: elsewhere a no-op.
do $$
declare
  f text;
  u text;
begin
  if not (select rolsuper from pg_roles where rolname = current_user) then
    raise notice 'advisory locks, large objects: not a superuser, PUBLIC keeps them (deploy/README.md)';
    return;
  end if;
  for f in select p.oid::regprocedure::text from pg_proc p
            where p.pronamespace = 'pg_catalog'::regnamespace
              and (p.proname like 'pg\_%advisory\_%' or p.proname in ('lo_creat', 'lo_create', 'lo_from_bytea'))
  loop
    for u in select current_user::text
             union select pg_get_userbyid(datdba)::text from pg_database where datname = current_database()
             union select tableowner::text from pg_tables where schemaname = current_schema() loop
      execute format('grant execute on function %s to %I', f, u);
    end loop;
    execute format('revoke execute on function %s from public', f);
  end loop;
end $$;
