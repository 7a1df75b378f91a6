-- v_example_pair_sums: grain = one row per (eval run a, eval run b) of the same dataset sharing example indexes.
-- From the example rows themselves: paired counts and sums of score differences
-- (b - a) for a paired t-test on fractional scores. Slow on big runs: always filter on both run ids.
create or replace view v_example_pair_sums as
select eval_run_id_a, eval_run_id_b, count(*) as n_pairs,
       count(*) filter (where flip = 'wrong_to_right') as n_wrong_to_right,
       count(*) filter (where flip = 'right_to_wrong') as n_right_to_wrong,
       coalesce(sum(score_b - score_a), 0) as diff_sum,
       coalesce(sum((score_b - score_a) * (score_b - score_a)), 0) as diff_sumsq,
       count(*) filter (where score_a > 0 and score_a < 1 or score_b > 0 and score_b < 1) as n_fractional
from v_example_pairs
group by eval_run_id_a, eval_run_id_b;
