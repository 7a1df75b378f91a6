-- eval360_data_version: a change counter for readers that cache (the dashboard), advanced once per write
-- statement on any table whose rows the dashboard shows (statement-level triggers, so a bulk insert of
-- 100,000 example rows costs one nextval). A reader that keys its cache on
-- `select last_value from eval360_data_version` re-queries only after a write. The number is advanced
-- when a statement runs, before its transaction commits: a reader that read the new number before the
-- commit became visible can cache the old rows under it until the next write (the dashboard bounds
-- this with a long TTL as a safety net). Re-applied by every `eval360 migrate`.

create or replace function eval360_bump_data_version() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
    -- security definer: whoever writes (a flush by a reader included) advances the counter.
    perform nextval('public.eval360_data_version');
    return null;
end $$;

-- One trigger per shown table (create or replace: applying this file again changes nothing).
do $$
declare
    t text;
begin
    foreach t in array array['models', 'checkpoints', 'checkpoint_aliases', 'benchmark_metadata', 'eval_runs',
                             'eval_results', 'example_results', 'example_run_stats', 'suites', 'alerts',
                             'promotion_rules', 'promotions', 'activity', 'score_facts', 'model_dataset_facts']
    loop
        execute format('create or replace trigger %I after insert or update or delete or truncate on %I '
                       'for each statement execute function eval360_bump_data_version()', t || '_data_version', t);
    end loop;
end $$;
