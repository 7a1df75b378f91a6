-- eval360_store_results(p): the write of a batch of eval results (a JSON array, one object per result,
-- prepared by ingest_api/ingest.py) in a fixed number of statements, whatever the batch size: the
-- scheduler's single post is a batch of one, the backfill's request a batch of hundreds. The runs it
-- touches are queued in facts_pending for the next flush. Re-applied by every `eval360 migrate`.

-- Metadata objects merged in order (later keys win), like a run of `a || b || c`.
create or replace aggregate eval360_jsonb_merge(jsonb) (sfunc = jsonb_concat, stype = jsonb, initcond = '{}');

-- Results of a batch are applied as if posted one after another in array order: a model or
-- checkpoint ends with the last values given (metadata merged), the last new run of a
-- (checkpoint, dataset) is the current one. Conflicts raise SQLSTATE 'E3409' with HINT
-- '<index>:<field>'; the API answers 409 naming results[index].field.

create or replace function eval360_store_results(p jsonb) returns jsonb
language plpgsql as $$
declare
  v_in eval360_result_in[];
  v_at eval360_result_at[];
  v_existing text[];
  v_demoted text[];
  v_bad record;
  v_err_i integer;       -- the first offending result (conflicts are checked by kind, answered in order)
  v_err_field text;
  v_err_msg text;
  v_key bigint;
  v_known_models text[];  -- models named by posted ids (`{model}__…`), as they stand before this batch
  v_quiet integer[];      -- results identical to the last posting of their run: no activity
  v_defer text := coalesce(current_setting('eval360.defer_facts', true), '');
begin
  -- The statement triggers of eval_runs / eval_results stand aside: the facts are queued below.
  perform set_config('eval360.defer_facts', 'on', true);
  -- Writers hold the facts lock shared until they commit; a flush takes it exclusively, so it never
  -- drains the queue while a write is in flight (it would re-derive facts from data about to change,
  -- and a run already queued is not queued again), nor meets a writer's (model, dataset) locks.
  perform pg_advisory_xact_lock_shared(360000002);
  v_in := array(select x from jsonb_populate_recordset(null::eval360_result_in, p) x order by x.i);
  -- Each result is stored under the model's type: the stored type, else (a new model) the type of
  -- its first result. Ingest never changes a model's type (only PATCH /api/admin/models/{id} does):
  -- a result that states another type is a conflict, and so is a training step for a baseline.
  v_at := array(
    select row(x.i, coalesce(m.model_type, x.first_type), null, null, null, x.dataset_name, null, null)
             ::eval360_result_at
      from (select r.i, r.model_id, r.dataset_name,
                   first_value(r.model_type) over (partition by r.model_id order by r.i) first_type
              from unnest(v_in) r) x
      left join models m on m.model_id = x.model_id
     order by x.i);
  select a.i, r.model_id, r.model_type as stated, a.model_type into v_bad
    from unnest(v_at) a join unnest(v_in) r on r.i = a.i
   where r.model_type_explicit and r.model_type <> a.model_type order by a.i limit 1;
  if found then
    v_err_i := v_bad.i; v_err_field := 'model_type';
    v_err_msg := format('model %L is a %s model; this result says %L (a model''s type changes only through '
                        'PATCH /api/admin/models/{model_id})', v_bad.model_id, v_bad.model_type, v_bad.stated);
  end if;
  select a.i, r.model_id, r.training_step into v_bad
    from unnest(v_at) a join unnest(v_in) r on r.i = a.i
   where a.model_type = 'baseline' and r.training_step is not null order by a.i limit 1;
  if found and v_bad.i < coalesce(v_err_i, v_bad.i + 1) then
    v_err_i := v_bad.i; v_err_field := 'training_step';
    v_err_msg := format('model %L is a baseline: it has no training steps (training_step %s was given)',
                        v_bad.model_id, v_bad.training_step);
  end if;
  v_known_models := array(select m.model_id from models m
                           where m.model_id = any(array(select x from unnest(v_in) r, unnest(r.id_models) x)));

  -- Models: create, or update only what changed (an upsert would lock the row even when nothing
  -- changes, serialising every concurrent post of the model).
  insert into models (model_id, display_name, model_type, owner, param_count)
  select r.model_id,
         (array_agg(r.display_name order by r.i desc))[1],
         (array_agg(r.model_type order by r.i))[1],
         (array_agg(r.owner order by r.i desc))[1],
         (array_agg(r.param_count order by r.i desc) filter (where r.param_count is not null))[1]
    from unnest(v_in) r group by r.model_id
  on conflict (model_id) do nothing;
  update models m set display_name = a.dn, owner = a.own, param_count = coalesce(a.pc, m.param_count),
                      updated_at = now()
    from (select r.model_id,
                 (array_agg(r.display_name order by r.i desc))[1] dn,
                 (array_agg(r.owner order by r.i desc))[1] own,
                 (array_agg(r.param_count order by r.i desc) filter (where r.param_count is not null))[1] pc
            from unnest(v_in) r group by r.model_id) a
   where m.model_id = a.model_id
     and (m.display_name, m.owner, m.param_count)
         is distinct from (a.dn, a.own, coalesce(a.pc, m.param_count));

  -- The type decides the canonical checkpoint id and the run id.
  v_at := array(
    select row(r.i, a.model_type,
               case when a.model_type = 'baseline' then r.cid_baseline else r.cid_training end,
               case when a.model_type = 'baseline' then null else r.step_training end,
               coalesce(r.eval_run_id, case when a.model_type = 'baseline' then r.run_baseline
                                            else r.run_training end),
               r.dataset_name, null, null)::eval360_result_at
      from unnest(v_in) r join unnest(v_at) a on a.i = r.i order by r.i);

  -- A posted id is never the id of another checkpoint (an alias never shadows a checkpoint id), and
  -- never names another model (`{other model}__…`): both are a conflict naming the owner. "Another"
  -- as posting one by one would see it: stored before this batch, or created by an earlier result.
  select a.i, r.checkpoint_id as posted, r.model_id, a.cid, coalesce(c.model_id, f.model_id) as owner into v_bad
    from unnest(v_at) a join unnest(v_in) r on r.i = a.i
    left join checkpoints c on c.checkpoint_id = r.checkpoint_id
    left join (select distinct on (a2.cid) a2.cid, a2.i as first_i, r2.model_id
                 from unnest(v_at) a2 join unnest(v_in) r2 on r2.i = a2.i order by a2.cid, a2.i) f
           on f.cid = r.checkpoint_id and f.first_i < a.i
   where r.checkpoint_id <> a.cid and (c.checkpoint_id is not null or f.cid is not null)
   order by a.i limit 1;
  if found and v_bad.i < coalesce(v_err_i, v_bad.i + 1) then
    v_err_i := v_bad.i; v_err_field := 'checkpoint_id';
    v_err_msg := case when v_bad.owner = v_bad.model_id
      then format('checkpoint_id %L is the id of another checkpoint of model %L (this result is for %L)',
                  v_bad.posted, v_bad.owner, v_bad.cid)
      else format('checkpoint_id %L is a checkpoint of model %L, not of model %L',
                  v_bad.posted, v_bad.owner, v_bad.model_id) end;
  end if;
  select a.i, r.checkpoint_id as posted, r.model_id, x as owner into v_bad
    from unnest(v_at) a join unnest(v_in) r on r.i = a.i cross join lateral unnest(r.id_models) x
    left join (select r2.model_id, min(r2.i) as first_i from unnest(v_in) r2 group by r2.model_id) fm
           on fm.model_id = x
   where x <> r.model_id and (x = any(v_known_models) or fm.first_i < r.i)
   order by a.i limit 1;
  if found and v_bad.i < coalesce(v_err_i, v_bad.i + 1) then
    v_err_i := v_bad.i; v_err_field := 'checkpoint_id';
    v_err_msg := format('checkpoint_id %L names model %L, not model %L', v_bad.posted, v_bad.owner, v_bad.model_id);
  end if;

  -- Checkpoints: created with the first values given, then the later ones merged in.
  insert into checkpoints (checkpoint_id, model_id, training_step, checkpoint_path, metadata, training_run,
                           recipe_tags)
  select distinct on (a.cid) a.cid, r.model_id, a.step, r.checkpoint_path, coalesce(r.metadata, '{}'),
         r.training_run, coalesce(r.recipe_tags, '{}')
    from unnest(v_at) a join unnest(v_in) r on r.i = a.i
   order by a.cid, a.i
  on conflict (checkpoint_id) do nothing;
  select a.i, a.cid, c.model_id into v_bad
    from unnest(v_at) a join unnest(v_in) r on r.i = a.i join checkpoints c on c.checkpoint_id = a.cid
   where c.model_id <> r.model_id order by a.i limit 1;
  if found and v_bad.i < coalesce(v_err_i, v_bad.i + 1) then
    v_err_i := v_bad.i; v_err_field := 'checkpoint_id';
    v_err_msg := format('checkpoint_id %L already belongs to model %L', v_bad.cid, v_bad.model_id);
  end if;
  if exists (select 1 from unnest(v_in) r
              where r.checkpoint_path is not null or r.training_run is not null
                 or coalesce(r.metadata, '{}') <> '{}' or cardinality(r.recipe_tags) > 0) then
  update checkpoints c set
    checkpoint_path = coalesce(g.path, c.checkpoint_path), metadata = c.metadata || g.meta,
    training_run = coalesce(g.tr, c.training_run),
    recipe_tags = case when g.tags is null then c.recipe_tags
                       else array(select jsonb_array_elements_text(g.tags)) end,
    updated_at = now()
    from (select a.cid,
                 (array_agg(r.checkpoint_path order by a.i desc) filter (where r.checkpoint_path is not null))[1] path,
                 eval360_jsonb_merge(coalesce(r.metadata, '{}') order by a.i) meta,
                 (array_agg(r.training_run order by a.i desc) filter (where r.training_run is not null))[1] tr,
                 (jsonb_agg(to_jsonb(r.recipe_tags) order by a.i desc)
                    filter (where cardinality(r.recipe_tags) > 0)) -> 0 tags
            from unnest(v_at) a join unnest(v_in) r on r.i = a.i group by a.cid) g
   where c.checkpoint_id = g.cid
     and (c.checkpoint_path, c.metadata, c.training_run, c.recipe_tags)
         is distinct from (coalesce(g.path, c.checkpoint_path), c.metadata || g.meta,
                           coalesce(g.tr, c.training_run),
                           case when g.tags is null then c.recipe_tags
                                else array(select jsonb_array_elements_text(g.tags)) end);
  end if;

  -- The posted spelling of a checkpoint id, kept as an alias of the canonical one, within its model
  -- (two models may both call a checkpoint `step-1000`).
  insert into checkpoint_aliases (model_id, alias, checkpoint_id)
  select distinct on (r.model_id, r.checkpoint_id) r.model_id, r.checkpoint_id, a.cid
    from unnest(v_at) a join unnest(v_in) r on r.i = a.i
   where r.checkpoint_id <> a.cid order by r.model_id, r.checkpoint_id, a.i
  on conflict (model_id, alias) do nothing;
  select a.i, r.checkpoint_id as posted, x.checkpoint_id as other into v_bad
    from unnest(v_at) a join unnest(v_in) r on r.i = a.i
    join checkpoint_aliases x on x.model_id = r.model_id and x.alias = r.checkpoint_id
   where r.checkpoint_id <> a.cid and x.checkpoint_id <> a.cid order by a.i limit 1;
  if found and v_bad.i < coalesce(v_err_i, v_bad.i + 1) then
    v_err_i := v_bad.i; v_err_field := 'checkpoint_id';
    v_err_msg := format('checkpoint_id %L is already an alias of %L', v_bad.posted, v_bad.other);
  end if;

  -- Serialise writers of the same (checkpoint, dataset), so exactly one run of each is current, and
  -- of the same run id, so a new run id posted for two cells at once is a conflict for the second;
  -- in one global order (no deadlock).
  for v_key in select k from (select hashtextextended(a.cid || E'\x1f' || a.dataset_name, 360) k
                                from unnest(v_at) a
                              union
                              select hashtextextended(a.run, 361) from unnest(v_at) a) keys order by 1 loop
    perform pg_advisory_xact_lock(v_key);
  end loop;

  -- A run id names one (checkpoint, dataset), before this batch and within it.
  for v_bad in
    (select a.i, a.run, e.checkpoint_id, e.dataset_name
       from unnest(v_at) a join eval_runs e on e.eval_run_id = a.run
      where (e.checkpoint_id, e.dataset_name) is distinct from (a.cid, a.dataset_name) order by a.i limit 1)
    union all
    (select x.i, x.run, x.fc, x.fd
       from (select a.i, a.run, a.cid, a.dataset_name,
                    first_value(a.cid) over w fc, first_value(a.dataset_name) over w fd
               from unnest(v_at) a where cardinality(v_in) > 1
             window w as (partition by a.run order by a.i)) x
      where (x.cid, x.dataset_name) is distinct from (x.fc, x.fd) order by x.i limit 1)
  loop
    if v_bad.i < coalesce(v_err_i, v_bad.i + 1) then
      v_err_i := v_bad.i; v_err_field := 'eval_run_id';
      v_err_msg := format('eval_run_id %L already belongs to checkpoint %L and dataset %L',
                          v_bad.run, v_bad.checkpoint_id, v_bad.dataset_name);
    end if;
  end loop;
  if v_err_i is not null then
    raise exception using errcode = 'E3409', hint = v_err_i || ':' || v_err_field, message = v_err_msg;
  end if;

  v_existing := array(select e.eval_run_id from eval_runs e
                       where e.eval_run_id = any(array(select a.run from unnest(v_at) a)));
  -- A new run becomes current (the one posted last, if a batch brings several for one cell);
  -- a re-posted run keeps its place unless a new run of its cell arrives.
  v_at := array(
    select row(y.i, y.model_type, y.cid, y.step, y.run, y.dataset_name,
               not y.existed and y.i = y.first_i,
               case when y.existed then coalesce(e.is_current, false) and not y.any_new
                    else y.run = y.winner end)::eval360_result_at
      from (select x.*,
                   bool_or(not x.existed) over (partition by x.cid, x.dataset_name) any_new,
                   first_value(x.run) over (partition by x.cid, x.dataset_name, x.existed
                                            order by x.first_i desc) winner
              from (select a.*, a.run = any(v_existing) existed, min(a.i) over (partition by a.run) first_i
                      from unnest(v_at) a) x) y
      left join eval_runs e on e.eval_run_id = y.run
     order by y.i);

  -- A posting identical to the last one of its run (the same content hash, computed by ingest.py from
  -- everything posted but who posted it) changes nothing: it records no activity.
  v_quiet := array(
    select y.i
      from (select a.i, a.run, r.content_hash as h,
                   lag(r.content_hash) over (partition by a.run order by a.i) as prev_h,
                   row_number() over (partition by a.run order by a.i) as k
              from unnest(v_at) a join unnest(v_in) r on r.i = a.i) y
      left join eval_runs e on e.eval_run_id = y.run
     where y.h is not null and y.h = case when y.k = 1 then e.content_hash else y.prev_h end);

  with d as (
    update eval_runs e set is_current = false, updated_at = now()
      from (select distinct a.cid, a.dataset_name from unnest(v_at) a where a.is_new) k
     where e.checkpoint_id = k.cid and e.dataset_name = k.dataset_name and e.is_current
    returning e.eval_run_id)
  select array_agg(eval_run_id) into v_demoted from d;

  insert into eval_runs (eval_run_id, checkpoint_id, model_id, dataset_name, status, is_current, primary_metric,
                         sample_count, seed, harness_commit, grader_type, grader_version, prompt_template,
                         dataset_version, dataset_split, error_message, eval_config, inference_config, metadata,
                         source, content_hash)
  select distinct on (a.run) a.run, a.cid, r.model_id, a.dataset_name, r.status, a.is_current, r.primary_metric,
         r.sample_count, r.seed, r.harness_commit, r.grader_type, r.grader_version, r.prompt_template,
         r.dataset_version, r.dataset_split, r.error_message, coalesce(r.eval_config, '{}'),
         coalesce(r.inference_config, '{}'), coalesce(r.metadata, '{}'), r.source, r.content_hash
    from unnest(v_at) a join unnest(v_in) r on r.i = a.i
   order by a.run, a.i desc
  on conflict (eval_run_id) do update set
    status = excluded.status, primary_metric = excluded.primary_metric, sample_count = excluded.sample_count,
    seed = excluded.seed, harness_commit = excluded.harness_commit, grader_type = excluded.grader_type,
    grader_version = excluded.grader_version, prompt_template = excluded.prompt_template,
    dataset_version = excluded.dataset_version, dataset_split = excluded.dataset_split,
    error_message = excluded.error_message, eval_config = excluded.eval_config,
    inference_config = excluded.inference_config, metadata = excluded.metadata, source = excluded.source,
    content_hash = excluded.content_hash, updated_at = now();

  -- Metrics: each run gets the set of its last posting (metrics no longer posted go).
  if cardinality(v_existing) > 0 then
  delete from eval_results e
   using (select distinct on (a.run) a.run, r.metrics
            from unnest(v_at) a join unnest(v_in) r on r.i = a.i
           where a.run = any(v_existing) order by a.run, a.i desc) l
   where e.eval_run_id = l.run
     and not exists (select 1 from jsonb_array_elements(l.metrics) m where m->>'metric_name' = e.metric_name);
  end if;
  insert into eval_results (eval_run_id, metric_name, metric_value, value_note, is_primary, is_score, metric_order,
                            n_samples, ci_lower, ci_upper, stderr)
  select l.run, m.metric_name, m.metric_value, m.value_note, m.is_primary, m.is_score, m.metric_order,
         m.n_samples, m.ci_lower, m.ci_upper, m.stderr
    from (select distinct on (a.run) a.run, r.metrics
            from unnest(v_at) a join unnest(v_in) r on r.i = a.i order by a.run, a.i desc) l
   cross join lateral jsonb_to_recordset(l.metrics) as m(metric_name text, metric_value float8, value_note text,
         is_primary boolean, is_score boolean, metric_order smallint, n_samples int, ci_lower float8,
         ci_upper float8, stderr float8)
  on conflict (eval_run_id, metric_name) do update set
    metric_value = excluded.metric_value, value_note = excluded.value_note, is_primary = excluded.is_primary,
    is_score = excluded.is_score, metric_order = excluded.metric_order, n_samples = excluded.n_samples,
    ci_lower = excluded.ci_lower, ci_upper = excluded.ci_upper, stderr = excluded.stderr, ingested_at = now();

  if exists (select 1 from unnest(v_in) r where r.category is not null or r.subcategory is not null) then
  insert into benchmark_metadata (dataset_name, category, subcategory)
  select r.dataset_name,
         (array_agg(r.category order by r.i desc) filter (where r.category is not null))[1],
         (array_agg(r.subcategory order by r.i desc) filter (where r.subcategory is not null))[1]
    from unnest(v_in) r where r.category is not null or r.subcategory is not null
   group by r.dataset_name
  on conflict (dataset_name) do update set
    category = coalesce(excluded.category, benchmark_metadata.category),
    subcategory = coalesce(excluded.subcategory, benchmark_metadata.subcategory),
    updated_at = now()
  where (benchmark_metadata.category, benchmark_metadata.subcategory)
        is distinct from (coalesce(excluded.category, benchmark_metadata.category),
                          coalesce(excluded.subcategory, benchmark_metadata.subcategory));
  end if;

  insert into activity (event_type, model_id, checkpoint_id, dataset_name, actor, summary, detail)
  select case when r.source = 'backfill' then 'backfill' else 'eval_result' end, r.model_id, a.cid,
         a.dataset_name, r.actor,
         format('%s: %s = %s (%s)%s', a.dataset_name, r.primary_metric, coalesce(r.primary_shown, 'no value'),
                r.status, case when a.is_new then '' else ', updated' end),
         jsonb_build_object('eval_run_id', a.run, 'status', r.status, 'primary_metric', r.primary_metric,
                            'value', r.primary_value, 'is_new_run', a.is_new, 'source', r.source)
    from unnest(v_at) a join unnest(v_in) r on r.i = a.i
   where coalesce(r.record_activity, true) and not (a.i = any(v_quiet)) order by a.i;

  -- Alerts of training checkpoints are judged by the worker from this queue (alert_recheck).
  insert into alert_recheck (checkpoint_id, dataset_name, reason)
  select distinct a.cid, a.dataset_name, 'result' from unnest(v_at) a where a.model_type = 'training'
  on conflict (checkpoint_id, dataset_name) do nothing;

  -- The read-side facts of every run this call touched, for the next flush.
  insert into facts_pending (eval_run_id)
  select distinct t from unnest(array(select a.run from unnest(v_at) a) || coalesce(v_demoted, '{}')) t
  on conflict (eval_run_id) do nothing;

  perform set_config('eval360.defer_facts', v_defer, true);
  return (select jsonb_agg(jsonb_build_object('checkpoint_id', a.cid, 'training_step', a.step,
                                              'eval_run_id', a.run, 'is_new_run', a.is_new,
                                              'is_current', a.is_current, 'model_type', a.model_type)
                           order by a.i)
            from unnest(v_at) a);
end $$;
