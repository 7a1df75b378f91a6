-- v_example_run_outcomes: grain = one row per current, completed eval run that has example rows.
-- The run's model, checkpoint step and dataset (from score_facts) with its example outcome bits
-- (example_run_stats): bit i of present_bits says example i exists, bit i of outcome_bits that it
-- was answered right (is_correct, else score >= 0.5). One model × dataset across training is then
-- one row per checkpoint, not one row per example (item histories, dataset items: docs/views.md).
create or replace view v_example_run_outcomes as
select f.eval_run_id, f.model_id, f.model_type, f.checkpoint_id, f.training_step, f.dataset_name,
       f.run_created_at, s.n_examples, s.n_correct, s.score_sum, s.n_fractional,
       s.present_bits, s.outcome_bits
from score_facts f
join example_run_stats s on s.eval_run_id = f.eval_run_id
where f.status = 'completed' and s.n_examples > 0;
