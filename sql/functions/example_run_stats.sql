-- example_run_stats: per-run counts, sums and outcome bit strings of example rows, kept by statement
-- triggers on example_results in the writing transaction (the table: sql/migrations/0001_baseline.sql).
-- Re-applied by every `eval360 migrate` (create or replace): edit here, never in a migration.

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

create or replace function example_run_stats_add() returns trigger language plpgsql as $$
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
  perform example_run_bits_apply(null, null,
    array(select eval_run_id from new_rows), array(select example_idx from new_rows),
    array(select coalesce(is_correct, score >= 0.5, false) from new_rows));
  return null;
end $$;

create or replace function example_run_stats_sub() returns trigger language plpgsql as $$
begin
  update example_run_stats s set
    n_examples = s.n_examples - d.n, n_graded = s.n_graded - d.ng, n_correct = s.n_correct - d.nc,
    score_sum = s.score_sum - d.ss, score_sumsq = s.score_sumsq - d.sq, n_fractional = s.n_fractional - d.nf,
    updated_at = now()
  from (select eval_run_id, count(*) n, count(score) ng, count(*) filter (where is_correct) nc,
               coalesce(sum(score), 0) ss, coalesce(sum(score * score), 0) sq,
               count(*) filter (where score > 0 and score < 1) nf
          from old_rows group by eval_run_id) d
  where s.eval_run_id = d.eval_run_id;
  perform example_run_bits_apply(array(select eval_run_id from old_rows), array(select example_idx from old_rows),
                                 null, null, null);
  delete from example_run_stats where n_examples <= 0;
  return null;
end $$;

create or replace function example_run_stats_upd() returns trigger language plpgsql as $$
begin
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
  perform example_run_bits_apply(array(select eval_run_id from old_rows), array(select example_idx from old_rows),
                                 array(select eval_run_id from new_rows), array(select example_idx from new_rows),
                                 array(select coalesce(is_correct, score >= 0.5, false) from new_rows));
  delete from example_run_stats where n_examples <= 0;
  return null;
end $$;

create or replace trigger example_results_stats_ins after insert on example_results
  referencing new table as new_rows for each statement execute function example_run_stats_add();
create or replace trigger example_results_stats_del after delete on example_results
  referencing old table as old_rows for each statement execute function example_run_stats_sub();
create or replace trigger example_results_stats_upd after update on example_results
  referencing old table as old_rows new table as new_rows for each statement
  execute function example_run_stats_upd();
