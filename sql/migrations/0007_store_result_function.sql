-- 0005: the write of one eval result as a single server-side call (one round trip instead of ten).
-- The caller (ingest_api/ingest.py) validates the payload and precomputes everything that does not
-- depend on stored state: both candidate canonical ids (training / baseline), the derived run ids,
-- the metric rows with their intervals. This function decides what depends on stored state
-- (the model's type, conflicts, which run is current) and writes it all.
-- Conflicts raise SQLSTATE 'E3409' with the offending field in HINT; the API answers 409.

create or replace function eval360_store_result(p jsonb) returns jsonb
language plpgsql as $$
declare
  v_model text := p->>'model_id';
  v_ds text := p->>'dataset_name';
  v_type text; v_dn text; v_owner text; v_pc bigint; v_want_type text; v_want_pc bigint;
  v_cid text; v_step bigint; v_run text;
  v_ck record; v_alias_of text; v_run_row record;
  v_is_new boolean; v_is_current boolean;
  v_meta jsonb := coalesce(p->'metadata', '{}');
  v_names text[];
  v_demoted text[];
  v_touched text[];
  v_defer text := coalesce(current_setting('eval360.defer_facts', true), '');
begin
  -- The read-side facts (score_facts, model_dataset_facts; migration 0002) are refreshed once at
  -- the end for the runs this call touched, not by each statement's trigger (see 0006). A caller
  -- that stores many results in one transaction (the batch endpoint) sets eval360.defer_facts
  -- itself and refreshes once for the whole batch.
  perform set_config('eval360.defer_facts', 'on', true);
  -- The model: create, or update only what changed (an unconditional upsert would lock
  -- the row and serialise every concurrent post of the model).
  insert into models (model_id, display_name, model_type, owner, param_count)
  values (v_model, p->>'display_name', p->>'model_type', p->>'owner', (p->>'param_count')::bigint)
  on conflict (model_id) do nothing
  returning model_type into v_type;
  if not found then
    select model_type, display_name, owner, param_count into v_type, v_dn, v_owner, v_pc
      from models where model_id = v_model;
    v_want_type := case when (p->>'model_type_explicit')::boolean then p->>'model_type' else v_type end;
    v_want_pc := coalesce((p->>'param_count')::bigint, v_pc);
    if (v_dn, v_owner, v_type, v_pc) is distinct from (p->>'display_name', p->>'owner', v_want_type, v_want_pc) then
      update models set display_name = p->>'display_name', owner = p->>'owner', model_type = v_want_type,
                        param_count = v_want_pc, updated_at = now()
       where model_id = v_model;
    end if;
    v_type := v_want_type;
  end if;

  if v_type = 'baseline' then
    v_cid := p->>'cid_baseline'; v_step := null; v_run := coalesce(p->>'eval_run_id', p->>'run_baseline');
  else
    v_cid := p->>'cid_training'; v_step := (p->>'step_training')::bigint;
    v_run := coalesce(p->>'eval_run_id', p->>'run_training');
  end if;

  -- The checkpoint: same pattern.
  insert into checkpoints (checkpoint_id, model_id, training_step, checkpoint_path, metadata, training_run, recipe_tags)
  values (v_cid, v_model, v_step, p->>'checkpoint_path', v_meta, p->>'training_run',
          coalesce(array(select jsonb_array_elements_text(p->'recipe_tags')), '{}'))
  on conflict (checkpoint_id) do nothing;
  if not found then
    select model_id, checkpoint_path, metadata, training_run, recipe_tags into v_ck
      from checkpoints where checkpoint_id = v_cid;
    if v_ck.model_id <> v_model then
      raise exception using errcode = 'E3409', hint = 'checkpoint_id',
        message = format('checkpoint_id %L already belongs to model %L', v_cid, v_ck.model_id);
    end if;
    if (coalesce(p->>'checkpoint_path', v_ck.checkpoint_path), v_ck.metadata || v_meta,
        coalesce(p->>'training_run', v_ck.training_run),
        case when jsonb_array_length(coalesce(p->'recipe_tags', '[]')) > 0
             then array(select jsonb_array_elements_text(p->'recipe_tags')) else v_ck.recipe_tags end)
       is distinct from (v_ck.checkpoint_path, v_ck.metadata, v_ck.training_run, v_ck.recipe_tags) then
      update checkpoints set
        checkpoint_path = coalesce(p->>'checkpoint_path', checkpoint_path),
        metadata = metadata || v_meta,
        training_run = coalesce(p->>'training_run', training_run),
        recipe_tags = case when jsonb_array_length(coalesce(p->'recipe_tags', '[]')) > 0
                           then array(select jsonb_array_elements_text(p->'recipe_tags')) else recipe_tags end,
        updated_at = now()
      where checkpoint_id = v_cid;
    end if;
  end if;

  -- The posted spelling, kept as an alias of the canonical id.
  if p->>'checkpoint_id' <> v_cid then
    insert into checkpoint_aliases (alias, checkpoint_id) values (p->>'checkpoint_id', v_cid)
    on conflict (alias) do nothing;
    if not found then
      select checkpoint_id into v_alias_of from checkpoint_aliases where alias = p->>'checkpoint_id';
      if v_alias_of is distinct from v_cid then
        raise exception using errcode = 'E3409', hint = 'checkpoint_id',
          message = format('checkpoint_id %L is already an alias of %L', p->>'checkpoint_id', v_alias_of);
      end if;
    end if;
  end if;

  -- Serialise writers of the same (checkpoint, dataset): exactly one run is current.
  perform pg_advisory_xact_lock(hashtextextended(v_cid || E'\x1f' || v_ds, 360));
  select checkpoint_id, dataset_name, is_current into v_run_row from eval_runs where eval_run_id = v_run;
  v_is_new := not found;
  if not v_is_new and (v_run_row.checkpoint_id, v_run_row.dataset_name) is distinct from (v_cid, v_ds) then
    raise exception using errcode = 'E3409', hint = 'eval_run_id',
      message = format('eval_run_id %L already belongs to checkpoint %L and dataset %L',
                       v_run, v_run_row.checkpoint_id, v_run_row.dataset_name);
  end if;
  if v_is_new then
    with d as (
      update eval_runs set is_current = false, updated_at = now()
       where checkpoint_id = v_cid and dataset_name = v_ds and is_current
      returning eval_run_id)
    select array_agg(eval_run_id) into v_demoted from d;
    v_is_current := true;
  else
    v_is_current := v_run_row.is_current;
  end if;

  insert into eval_runs (eval_run_id, checkpoint_id, model_id, dataset_name, status, is_current, primary_metric,
                         sample_count, seed, harness_commit, grader_type, grader_version, prompt_template,
                         dataset_version, dataset_split, error_message, eval_config, inference_config, metadata,
                         source)
  values (v_run, v_cid, v_model, v_ds, p->>'status', true, p->>'primary_metric', (p->>'sample_count')::int,
          (p->>'seed')::bigint, p->>'harness_commit', p->>'grader_type', p->>'grader_version',
          p->>'prompt_template', p->>'dataset_version', p->>'dataset_split', p->>'error_message',
          coalesce(p->'eval_config', '{}'), coalesce(p->'inference_config', '{}'), v_meta, p->>'source')
  on conflict (eval_run_id) do update set
    status = excluded.status, primary_metric = excluded.primary_metric, sample_count = excluded.sample_count,
    seed = excluded.seed, harness_commit = excluded.harness_commit, grader_type = excluded.grader_type,
    grader_version = excluded.grader_version, prompt_template = excluded.prompt_template,
    dataset_version = excluded.dataset_version, dataset_split = excluded.dataset_split,
    error_message = excluded.error_message, eval_config = excluded.eval_config,
    inference_config = excluded.inference_config, metadata = excluded.metadata, source = excluded.source,
    updated_at = now();

  -- Metrics: replace the run's set (metrics no longer posted go).
  select array_agg(m->>'metric_name') into v_names from jsonb_array_elements(p->'metrics') m;
  if not v_is_new then
    delete from eval_results where eval_run_id = v_run and metric_name <> all(v_names);
  end if;
  insert into eval_results (eval_run_id, metric_name, metric_value, value_note, is_primary, is_score, metric_order,
                            n_samples, ci_lower, ci_upper, stderr)
  select v_run, m.metric_name, m.metric_value, m.value_note, m.is_primary, m.is_score, m.metric_order,
         m.n_samples, m.ci_lower, m.ci_upper, m.stderr
    from jsonb_to_recordset(p->'metrics') as m(metric_name text, metric_value float8, value_note text,
         is_primary boolean, is_score boolean, metric_order smallint, n_samples int, ci_lower float8,
         ci_upper float8, stderr float8)
  on conflict (eval_run_id, metric_name) do update set
    metric_value = excluded.metric_value, value_note = excluded.value_note, is_primary = excluded.is_primary,
    is_score = excluded.is_score, metric_order = excluded.metric_order, n_samples = excluded.n_samples,
    ci_lower = excluded.ci_lower, ci_upper = excluded.ci_upper, stderr = excluded.stderr, ingested_at = now();

  if p->>'category' is not null or p->>'subcategory' is not null then
    insert into benchmark_metadata (dataset_name, category, subcategory)
    values (v_ds, p->>'category', p->>'subcategory')
    on conflict (dataset_name) do update set
      category = coalesce(excluded.category, benchmark_metadata.category),
      subcategory = coalesce(excluded.subcategory, benchmark_metadata.subcategory),
      updated_at = now()
    where (benchmark_metadata.category, benchmark_metadata.subcategory)
          is distinct from (coalesce(excluded.category, benchmark_metadata.category),
                            coalesce(excluded.subcategory, benchmark_metadata.subcategory));
  end if;

  if coalesce((p->>'record_activity')::boolean, true) then
    insert into activity (event_type, model_id, checkpoint_id, dataset_name, actor, summary, detail)
    values (case when p->>'source' = 'backfill' then 'backfill' else 'eval_result' end, v_model, v_cid, v_ds,
            p->>'actor',
            format('%s: %s = %s (%s)%s', v_ds, p->>'primary_metric', coalesce(p->>'primary_shown', 'no value'),
                   p->>'status', case when v_is_new then '' else ', updated' end),
            jsonb_build_object('eval_run_id', v_run, 'status', p->>'status', 'primary_metric', p->>'primary_metric',
                               'value', p->'primary_value', 'is_new_run', v_is_new, 'source', p->>'source'));
  end if;

  -- Alerts of a training checkpoint are judged by the worker from this queue (0003), written in the
  -- same transaction as the data, so a judgement is never lost (EVAL360_ALERTS_INLINE judges inline).
  if v_type = 'training' then
    insert into alert_recheck (checkpoint_id, dataset_name, reason) values (v_cid, v_ds, 'result')
    on conflict (checkpoint_id, dataset_name) do nothing;
  end if;

  v_touched := array[v_run] || coalesce(v_demoted, '{}');
  perform set_config('eval360.defer_facts', v_defer, true);
  if v_defer <> 'on' then
    perform score_facts_refresh(v_touched);
  end if;

  return jsonb_build_object('checkpoint_id', v_cid, 'training_step', v_step, 'eval_run_id', v_run,
                            'is_new_run', v_is_new, 'is_current', v_is_current, 'model_type', v_type,
                            'touched_runs', to_jsonb(v_touched));
end $$;
