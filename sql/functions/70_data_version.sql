-- eval360_data_version: a change counter for readers that cache (the dashboard), advanced once per write
-- statement on any table whose rows the dashboard shows (statement-level triggers, so a bulk insert of
-- 100,000 example rows costs one nextval). A reader that keys its cache on
-- `select last_value from eval360_data_version` re-queries only after a write. The number is advanced
-- when a statement runs, before its transaction commits: a reader that read the new number before the
-- commit became visible can cache the old rows under it until the next write (the dashboard bounds
-- this with a long TTL as a safety net). The triggers: 90_triggers.sql. Re-applied by every
-- `eval360 migrate`.

create or replace function eval360_bump_data_version() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
    -- security definer: whoever writes (a flush by a reader included) advances the counter.
    perform nextval('public.eval360_data_version');
    return null;
end $$;
