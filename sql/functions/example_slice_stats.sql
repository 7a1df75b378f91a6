-- example_slice_stats: per-run slice counts (run × dimension × slice value: the rows of
-- v_example_slices), kept by statement triggers on example_results in the writing transaction, as
-- example_run_stats is. Re-applied by every `eval360 migrate`.

-- The counts of a set of example rows per run × dimension × slice (rows: a transition table's rows).
create or replace function eval360_slice_counts(p_runs text[], p_ok boolean[], p_score float8[], p_topic text[],
                                     p_difficulty text[], p_subtask text[])
returns table (eval_run_id text, dimension text, slice text, n bigint, nc bigint, ng bigint, ss float8,
               sq float8, nf bigint)
language sql immutable as $$
  select r.run, d.dimension, d.slice, count(*), count(*) filter (where r.ok), count(r.score),
         coalesce(sum(r.score), 0), coalesce(sum(r.score * r.score), 0),
         count(*) filter (where r.score > 0 and r.score < 1)
    from unnest(p_runs, p_ok, p_score, p_topic, p_difficulty, p_subtask) r(run, ok, score, topic, difficulty, subtask)
   cross join lateral (values ('topic', coalesce(r.topic, 'unspecified')),
                              ('difficulty', coalesce(r.difficulty, 'unspecified')),
                              ('subtask', coalesce(r.subtask, 'unspecified'))) d(dimension, slice)
   group by 1, 2, 3
   order by 1, 2, 3
$$;

-- Add (p_sign 1) or subtract (p_sign -1) counts; rows left with no example are removed.
-- Rows are locked in key order, so concurrent writers of the same run never deadlock here.
create or replace function eval360_slice_apply(p_sign integer, p_runs text[], p_ok boolean[], p_score float8[],
                                    p_topic text[], p_difficulty text[], p_subtask text[])
returns void language plpgsql as $$
begin
  if p_sign > 0 then
    insert into example_slice_stats as s (eval_run_id, dimension, slice, n_examples, n_correct, n_graded,
                                          score_sum, score_sumsq, n_fractional)
    select c.eval_run_id, c.dimension, c.slice, c.n, c.nc, c.ng, c.ss, c.sq, c.nf
      from eval360_slice_counts(p_runs, p_ok, p_score, p_topic, p_difficulty, p_subtask) c
      -- a cascade from eval_runs has removed the run already: nothing to count then
      where exists (select 1 from eval_runs r where r.eval_run_id = c.eval_run_id)
    on conflict (eval_run_id, dimension, slice) do update set
      n_examples = s.n_examples + excluded.n_examples, n_correct = s.n_correct + excluded.n_correct,
      n_graded = s.n_graded + excluded.n_graded, score_sum = s.score_sum + excluded.score_sum,
      score_sumsq = s.score_sumsq + excluded.score_sumsq, n_fractional = s.n_fractional + excluded.n_fractional;
  else
    update example_slice_stats s set
      n_examples = s.n_examples - c.n, n_correct = s.n_correct - c.nc, n_graded = s.n_graded - c.ng,
      score_sum = s.score_sum - c.ss, score_sumsq = s.score_sumsq - c.sq, n_fractional = s.n_fractional - c.nf
      from eval360_slice_counts(p_runs, p_ok, p_score, p_topic, p_difficulty, p_subtask) c
     where s.eval_run_id = c.eval_run_id and s.dimension = c.dimension and s.slice = c.slice;
    delete from example_slice_stats s
     where s.eval_run_id = any(p_runs) and s.n_examples <= 0;
  end if;
end $$;

create or replace function example_slice_stats_ins() returns trigger language plpgsql as $$
begin
  perform eval360_slice_apply(1, array_agg(eval_run_id), array_agg(coalesce(is_correct, score >= 0.5)),
                              array_agg(score), array_agg(topic), array_agg(difficulty), array_agg(subtask))
     from new_rows having count(*) > 0;
  return null;
end $$;

create or replace function example_slice_stats_del() returns trigger language plpgsql as $$
begin
  perform eval360_slice_apply(-1, array_agg(eval_run_id), array_agg(coalesce(is_correct, score >= 0.5)),
                              array_agg(score), array_agg(topic), array_agg(difficulty), array_agg(subtask))
     from old_rows having count(*) > 0;
  return null;
end $$;

create or replace function example_slice_stats_upd() returns trigger language plpgsql as $$
begin
  perform eval360_slice_apply(-1, array_agg(eval_run_id), array_agg(coalesce(is_correct, score >= 0.5)),
                              array_agg(score), array_agg(topic), array_agg(difficulty), array_agg(subtask))
     from old_rows having count(*) > 0;
  perform eval360_slice_apply(1, array_agg(eval_run_id), array_agg(coalesce(is_correct, score >= 0.5)),
                              array_agg(score), array_agg(topic), array_agg(difficulty), array_agg(subtask))
     from new_rows having count(*) > 0;
  return null;
end $$;

create or replace trigger example_results_slices_ins after insert on example_results
  referencing new table as new_rows for each statement execute function example_slice_stats_ins();
create or replace trigger example_results_slices_del after delete on example_results
  referencing old table as old_rows for each statement execute function example_slice_stats_del();
create or replace trigger example_results_slices_upd after update on example_results
  referencing old table as old_rows new table as new_rows for each statement
  execute function example_slice_stats_upd();

-- Re-derive every row from example_results: after a bulk load that bypassed the triggers
-- (session_replication_role = replica), like eval360_rebuild_read_facts() for the other facts.
create or replace function eval360_rebuild_slice_stats() returns void language plpgsql as $$
begin
  delete from example_slice_stats;
  insert into example_slice_stats (eval_run_id, dimension, slice, n_examples, n_correct, n_graded, score_sum,
                                   score_sumsq, n_fractional)
  select e.eval_run_id, d.dimension, d.slice, count(*), count(*) filter (where coalesce(e.is_correct, e.score >= 0.5)),
         count(e.score), coalesce(sum(e.score), 0), coalesce(sum(e.score * e.score), 0),
         count(*) filter (where e.score > 0 and e.score < 1)
    from example_results e
   cross join lateral (values ('topic', coalesce(e.topic, 'unspecified')),
                              ('difficulty', coalesce(e.difficulty, 'unspecified')),
                              ('subtask', coalesce(e.subtask, 'unspecified'))) d(dimension, slice)
   group by 1, 2, 3;
end $$;
