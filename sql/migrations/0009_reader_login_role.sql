-- 0009: eval360_reader becomes the login role of ad-hoc SQL (the dashboard's SQL page, analysts'
-- psql and notebooks). It was a NOLOGIN role the application switched to with SET LOCAL ROLE on
-- its own connection; PostgreSQL checks a role switch against the *session* user, so any query
-- reaching set_config('role', …) (through query_to_xml, say) switched back to the owner. Now the
-- SQL runs on a connection that logs in as eval360_reader: SELECT on the views (granted by the
-- migration runner each time it re-creates them) and nothing else, member of no role, so there is
-- no other identity to switch to.
--
-- Roles are global to the server while this migration runs once per database, and on a shared
-- server many databases migrate at once: every change to the role below is made only when the
-- role differs from what it must be, and retried when a concurrent migration of another database
-- made the same change first (duplicate role, "tuple concurrently updated").
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
      -- Defaults of every session of the role (an analyst may change them in a session; the SQL
      -- page sets its own limits in each transaction as well).
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

-- In this database: nothing but the views (re-granted by the runner after it re-creates them).
do $$
declare
  s text := current_schema();
begin
  execute format('revoke all on all tables in schema %I from eval360_reader', s);
  execute format('revoke all on all sequences in schema %I from eval360_reader', s);
  execute format('revoke create on schema %I from public', s);
  execute format('grant usage on schema %I to eval360_reader', s);
  -- Functions are executable by PUBLIC by default. Eval360's own write the tables (the facts, the
  -- store): only the owner calls them. The runner grants the reader those the views call.
  execute format('revoke execute on all routines in schema %I from public', s);
  execute format('revoke all on all routines in schema %I from eval360_reader', s);
end $$;
alter default privileges revoke execute on routines from public;

-- DO blocks and new PL/pgSQL functions need USAGE on the language, which PUBLIC has by default:
-- keep it for the runner (later migrations), take it from everyone else. Only the language's
-- owner can change that (a superuser; on a managed server, nothing changes and this is a no-op).
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
-- of the facts, 0008) and creating large objects (which outlive the session: the disk fills up).
-- Kept for the users that own Eval360's data (the runner, the database owner, the tables' owners),
-- taken from everyone else. Only a superuser can change built-in functions: elsewhere a no-op.
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
