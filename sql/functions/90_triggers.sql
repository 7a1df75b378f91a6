-- Every trigger on Eval360's tables, one row each: its name, the table, the statement it follows, the
-- transition tables it reads (old / new rows of the statement), the function it runs (the files before
-- this one) and whether it stands aside while eval360.defer_facts is on (inside eval360_store_results,
-- which queues the facts of what it writes in facts_pending itself).
--
-- All are AFTER … FOR EACH STATEMENT triggers: a trigger with transition tables has one event, so a
-- table has one per kind of statement; on one table and event they fire in name order. Applied after
-- the functions (file name order) and re-applied by every `eval360 migrate`: a trigger already as listed
-- is left alone, another is created or replaced (a disabled one is enabled again). A trigger taken out
-- of this list stays in the database: drop it in a migration.
do $$
declare
  t record;
begin
  for t in
    select * from (values
      -- example_results → example_run_stats, example_slice_stats (10_example_facts.sql); bench_items.py
      -- switches the slice triggers off to measure what they cost a write
      ('example_results_stats_ins', 'example_results', 'insert', 'new', 'example_run_stats_changed', false),
      ('example_results_stats_del', 'example_results', 'delete', 'old', 'example_run_stats_changed', false),
      ('example_results_stats_upd', 'example_results', 'update', 'old new', 'example_run_stats_changed', false),
      ('example_results_slices_ins', 'example_results', 'insert', 'new', 'example_slice_stats_changed', false),
      ('example_results_slices_del', 'example_results', 'delete', 'old', 'example_slice_stats_changed', false),
      ('example_results_slices_upd', 'example_results', 'update', 'old new', 'example_slice_stats_changed', false),
      -- example rows arriving queue their cell for the alert judge (60_alert_recheck.sql)
      ('example_results_alert_recheck', 'example_results', 'insert', 'new', 'alert_recheck_examples', false),
      -- eval_runs, eval_results → score_facts (20_score_facts.sql)
      ('eval_runs_facts_ins', 'eval_runs', 'insert', 'new', 'score_facts_from_changed', true),
      ('eval_runs_facts_upd', 'eval_runs', 'update', 'new', 'score_facts_from_changed', true),
      ('eval_results_facts_ins', 'eval_results', 'insert', 'new', 'score_facts_from_changed', true),
      ('eval_results_facts_upd', 'eval_results', 'update', 'new', 'score_facts_from_changed', true),
      ('eval_results_facts_del', 'eval_results', 'delete', 'old', 'score_facts_from_changed', true),
      -- models, checkpoints → score_facts; benchmark_metadata → model_dataset_facts (40_facts.sql)
      ('models_facts_upd', 'models', 'update', 'old new', 'facts_from_parents', false),
      ('checkpoints_facts_upd', 'checkpoints', 'update', 'old new', 'facts_from_parents', false),
      ('benchmark_metadata_mdf_ins', 'benchmark_metadata', 'insert', 'new', 'facts_from_parents', false),
      ('benchmark_metadata_mdf_upd', 'benchmark_metadata', 'update', 'new', 'facts_from_parents', false),
      -- score_facts → model_dataset_facts (30_model_dataset_facts.sql)
      ('score_facts_mdf_ins', 'score_facts', 'insert', 'new', 'model_dataset_facts_from_new', false),
      ('score_facts_mdf_upd', 'score_facts', 'update', 'old new', 'model_dataset_facts_from_upd', false),
      ('score_facts_mdf_del', 'score_facts', 'delete', 'old', 'model_dataset_facts_from_old', false)
    ) v(name, tbl, event, rows, fn, defers)
    union all
    -- every table the dashboard shows → the change counter (70_data_version.sql)
    select tbl || '_data_version', tbl, 'insert or update or delete or truncate', '', 'eval360_bump_data_version', false
      from unnest(array['models', 'checkpoints', 'checkpoint_aliases', 'benchmark_metadata', 'eval_runs',
                        'eval_results', 'example_results', 'example_run_stats', 'suites', 'alerts',
                        'promotion_rules', 'promotions', 'activity', 'score_facts', 'model_dataset_facts']) tbl
  loop
    -- Already so (same function, events, transition tables and condition, enabled): left alone, so a
    -- run that changes nothing takes no lock on the tables and does not wait for their writers.
    continue when exists (
      select 1 from pg_trigger g
       where g.tgrelid = to_regclass(quote_ident(t.tbl)) and g.tgname = t.name and not g.tgisinternal
         and g.tgfoid = to_regproc(quote_ident(t.fn)) and g.tgenabled = 'O' and (g.tgqual is not null) = t.defers
         and g.tgtype = (case when t.event like '%insert%' then 4 else 0 end) + (case when t.event like '%delete%'
                         then 8 else 0 end) + (case when t.event like '%update%' then 16 else 0 end)
                        + (case when t.event like '%truncate%' then 32 else 0 end)
         and g.tgoldtable is not distinct from (case when t.rows like 'old%' then 'old_rows' end)
         and g.tgnewtable is not distinct from (case when t.rows like '%new' then 'new_rows' end));
    execute format('create or replace trigger %I after %s on %I %s for each statement %s execute function %I()',
                   t.name, t.event, t.tbl,
                   case t.rows when 'new' then 'referencing new table as new_rows'
                               when 'old' then 'referencing old table as old_rows'
                               when 'old new' then 'referencing old table as old_rows new table as new_rows'
                               else '' end,
                   case when t.defers then 'when (current_setting(''eval360.defer_facts'', true) is distinct from ''on'')'
                        else '' end,
                   t.fn);
  end loop;
end $$;
