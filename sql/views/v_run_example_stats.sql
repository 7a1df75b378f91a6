-- v_run_example_stats: grain = one row per eval run that has example rows.
-- Counts and sums of its examples (kept by triggers in example_run_stats), with the mean and accuracy.
create or replace view v_run_example_stats as
select s.eval_run_id, s.n_examples, s.n_graded, s.n_correct, s.score_sum, s.score_sumsq,
       s.n_fractional,
       (s.n_fractional = 0) as is_binary,
       case when s.n_graded > 0 then s.score_sum / s.n_graded end as mean_score,
       case when s.n_examples > 0 then s.n_correct::float8 / s.n_examples end as accuracy
from example_run_stats s
where s.n_examples > 0;
