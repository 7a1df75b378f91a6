-- v_example_slice_trends: grain = one row per current, completed eval run with example rows × slice
-- dimension (topic, difficulty, subtask) × slice value.
-- The run's model, checkpoint and step with its slice counts (example_slice_stats, kept by triggers):
-- examples, correct (is_correct, else score >= 0.5), graded and score sums; 'unspecified' for a
-- missing label. Filter on model_id, dataset_name and dimension for one slice trend.
create or replace view v_example_slice_trends as
select o.model_id, o.model_type, o.dataset_name, o.checkpoint_id, o.training_step, o.eval_run_id,
       s.dimension, s.slice, s.n_examples, s.n_correct, s.n_graded, s.score_sum, s.score_sumsq, s.n_fractional
from v_example_run_outcomes o
join example_slice_stats s on s.eval_run_id = o.eval_run_id;
