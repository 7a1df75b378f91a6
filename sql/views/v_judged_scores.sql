-- v_judged_scores: grain = one row per checkpoint × dataset whose current eval run has a completed,
-- valued primary score (v_current_scores' is_scored).
-- What the alert judge (ingest_api/alerts.py) and the promotion verdict (ingest_api/promotion.py)
-- read of a score: its value, n and stderr, the dataset's direction, category and the size of a
-- critical drop (critical_drop_points, null: the default), and the run's example counts (0 without
-- example rows; the paired counts of two runs are in v_example_pair_stats).
create or replace view v_judged_scores as
select s.model_id, s.model_type, s.checkpoint_id, s.training_step, s.dataset_name, s.eval_run_id,
       s.metric_name, s.metric_value, s.n, s.stderr, s.is_higher_better,
       coalesce(s.n_examples, 0) as n_examples, coalesce(s.n_graded, 0) as n_graded,
       coalesce(s.n_fractional, 0) as n_fractional,
       b.category, b.critical_drop_points
from v_current_scores s
left join benchmark_metadata b on b.dataset_name = s.dataset_name
where s.is_scored;
