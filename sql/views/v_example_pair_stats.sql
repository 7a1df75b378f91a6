-- v_example_pair_stats: grain = one row per (eval run a, eval run b) of the same dataset, both with example rows.
-- Paired counts for McNemar from the runs' outcome bits (example_run_stats): examples present on
-- both sides, wrong→right and right→wrong. An outcome is is_correct, else score >= 0.5; for
-- fractional scores use v_example_pair_sums. flip_bits: bit i set when example i is on both sides
-- with a different outcome (the candidates of v_example_pairs' flips, found without reading example
-- rows). Always filter on both run ids (one pair at a time:
-- `cross join lateral (select … where eval_run_id_a = p.a and eval_run_id_b = p.b offset 0)`).
create or replace view v_example_pair_stats as
with p as (
  select a.eval_run_id as eval_run_id_a, b.eval_run_id as eval_run_id_b,
         a.n_fractional + b.n_fractional as n_fractional,
         greatest(length(a.present_bits), length(b.present_bits)) as len,
         a.present_bits as pa, a.outcome_bits as oa, b.present_bits as pb, b.outcome_bits as ob
  from example_run_stats a
  join eval_runs ra on ra.eval_run_id = a.eval_run_id
  join eval_runs rb on rb.dataset_name = ra.dataset_name and rb.eval_run_id <> ra.eval_run_id
  join example_run_stats b on b.eval_run_id = rb.eval_run_id
)
-- Each bit string is padded and combined once per pair (offset 0: the subqueries are evaluated
-- once, not copied into every use): shared = present on both sides; ra / rb = shared and right on
-- a / on b; right→wrong = |ra| − |ra ∧ rb|, wrong→right = |rb| − |ra ∧ rb|.
select eval_run_id_a, eval_run_id_b, n_fractional, bit_count(x.shared) as n_pairs,
       bit_count(y.rb) - y.n_both_right as n_wrong_to_right,
       bit_count(y.ra) - y.n_both_right as n_right_to_wrong,
       y.ra # y.rb as flip_bits
from p
cross join lateral (select eval360_pad(p.pa, p.len) & eval360_pad(p.pb, p.len) as shared offset 0) x
cross join lateral (
  select r.ra, r.rb, bit_count(r.ra & r.rb) as n_both_right
  from (select x.shared & eval360_pad(p.oa, p.len) as ra, x.shared & eval360_pad(p.ob, p.len) as rb offset 0) r
) y;
