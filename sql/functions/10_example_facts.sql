-- What a change of example rows keeps up to date, in the writing transaction (the tables:
-- sql/migrations/0001_baseline.sql):
--  * example_run_stats: per run, the counts and sums of its examples and two bit strings (bit i: example
--    i exists / was answered right, is_correct else score >= 0.5), so a paired comparison of two runs is
--    three bit_count()s instead of a join of their example rows;
--  * example_slice_stats: per run × dimension (topic, difficulty, subtask) × slice value, the same
--    counts (the rows of v_example_slices), so a slice trend reads ~100 × (slice values) rows.
-- The triggers: 90_triggers.sql. Re-applied by every `eval360 migrate` (create or replace): edit here,
-- never in a migration.

-- A bit string of length len with bit i set for every i in idx (0 <= i < len): one '0'-run and a
-- '1' per set index, so the statement work is O(|idx|) and only the C-level string grows with len.
create or replace function eval360_bits(idx int[], len int) returns varbit language sql immutable as $$
  select (coalesce(string_agg(repeat('0', s.i - s.prev - 1) || '1', '' order by s.i), '')
          || repeat('0', greatest(len - 1 - coalesce(max(s.i), -1), 0)))::varbit
    from (select d.i, coalesce(lag(d.i) over (order by d.i), -1) as prev
            from (select distinct i from unnest(idx) i where i >= 0 and i < len) d) s
$$;

-- b padded with zeros to length len (never shortened).
create or replace function eval360_pad(b varbit, len int) returns varbit language sql immutable as $$
  select case when length(b) >= len then b else b || repeat('0', len - length(b))::varbit end
$$;

-- Called by the example triggers after the counts are adjusted: clear the bits of deleted rows,
-- then set those of inserted rows (an update is both).
create or replace function example_run_bits_apply(p_old text[], p_old_idx int[], p_new text[], p_new_idx int[],
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

-- An update is a delete of the old rows followed by an insert of the new ones. Rows deleted by a
-- cascade from eval_runs find no stats row left: nothing to subtract then.
create or replace function example_run_stats_changed() returns trigger language plpgsql as $$
declare
  v_old_runs text[];
  v_old_idx int[];
  v_new_runs text[];
  v_new_idx int[];
  v_new_ok boolean[];
begin
  if tg_op <> 'INSERT' then
    update example_run_stats s set
      n_examples = s.n_examples - d.n, n_graded = s.n_graded - d.ng, n_correct = s.n_correct - d.nc,
      score_sum = s.score_sum - d.ss, score_sumsq = s.score_sumsq - d.sq, n_fractional = s.n_fractional - d.nf,
      updated_at = now()
    from (select eval_run_id, count(*) n, count(score) ng, count(*) filter (where is_correct) nc,
                 coalesce(sum(score), 0) ss, coalesce(sum(score * score), 0) sq,
                 count(*) filter (where score > 0 and score < 1) nf
            from old_rows group by eval_run_id) d
    where s.eval_run_id = d.eval_run_id;
    v_old_runs := array(select eval_run_id from old_rows);
    v_old_idx := array(select example_idx from old_rows);
  end if;
  if tg_op <> 'DELETE' then
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
    v_new_runs := array(select eval_run_id from new_rows);
    v_new_idx := array(select example_idx from new_rows);
    v_new_ok := array(select coalesce(is_correct, score >= 0.5, false) from new_rows);
  end if;
  perform example_run_bits_apply(v_old_runs, v_old_idx, v_new_runs, v_new_idx, v_new_ok);
  if tg_op <> 'INSERT' then
    delete from example_run_stats where n_examples <= 0;
  end if;
  return null;
end $$;

create or replace function example_slice_stats_changed() returns trigger language plpgsql as $$
begin
  if tg_op <> 'INSERT' then
    perform eval360_slice_apply(-1, array_agg(eval_run_id), array_agg(coalesce(is_correct, score >= 0.5)),
                                array_agg(score), array_agg(topic), array_agg(difficulty), array_agg(subtask))
       from old_rows having count(*) > 0;
  end if;
  if tg_op <> 'DELETE' then
    perform eval360_slice_apply(1, array_agg(eval_run_id), array_agg(coalesce(is_correct, score >= 0.5)),
                                array_agg(score), array_agg(topic), array_agg(difficulty), array_agg(subtask))
       from new_rows having count(*) > 0;
  end if;
  return null;
end $$;

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
