-- v_example_slices: grain = one row per eval run × slice dimension (topic, difficulty, subtask) × slice value.
-- Example counts, correct counts (is_correct, else score >= 0.5) and score sums in the slice;
-- a missing label is 'unspecified'.
create or replace view v_example_slices as
select eval_run_id, 'topic'::text as dimension, coalesce(topic, 'unspecified') as slice,
       count(*) as n_examples, count(*) filter (where coalesce(is_correct, score >= 0.5)) as n_correct,
       count(score) as n_graded, coalesce(sum(score), 0) as score_sum, coalesce(sum(score * score), 0) as score_sumsq,
       count(*) filter (where score > 0 and score < 1) as n_fractional
  from example_results group by eval_run_id, coalesce(topic, 'unspecified')
union all
select eval_run_id, 'difficulty', coalesce(difficulty, 'unspecified'),
       count(*), count(*) filter (where coalesce(is_correct, score >= 0.5)), count(score), coalesce(sum(score), 0),
       coalesce(sum(score * score), 0), count(*) filter (where score > 0 and score < 1)
  from example_results group by eval_run_id, coalesce(difficulty, 'unspecified')
union all
select eval_run_id, 'subtask', coalesce(subtask, 'unspecified'),
       count(*), count(*) filter (where coalesce(is_correct, score >= 0.5)), count(score), coalesce(sum(score), 0),
       coalesce(sum(score * score), 0), count(*) filter (where score > 0 and score < 1)
  from example_results group by eval_run_id, coalesce(subtask, 'unspecified');
