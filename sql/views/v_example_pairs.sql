-- v_example_pairs: grain = one row per (eval run a, eval run b, example index) for two runs of the same dataset.
-- The example's outcome on both sides (correct = is_correct, else score >= 0.5) and its flip:
-- 'right_to_wrong', 'wrong_to_right' or 'same'. Always filter on both run ids.
create or replace view v_example_pairs as
select a.eval_run_id as eval_run_id_a, b.eval_run_id as eval_run_id_b, a.example_idx,
       a.score as score_a, b.score as score_b,
       coalesce(a.is_correct, a.score >= 0.5) as is_correct_a,
       coalesce(b.is_correct, b.score >= 0.5) as is_correct_b,
       case
         when coalesce(a.is_correct, a.score >= 0.5) and not coalesce(b.is_correct, b.score >= 0.5)
           then 'right_to_wrong'
         when not coalesce(a.is_correct, a.score >= 0.5) and coalesce(b.is_correct, b.score >= 0.5)
           then 'wrong_to_right'
         else 'same'
       end as flip,
       a.input_preview, a.ground_truth, a.output_preview as output_a, b.output_preview as output_b,
       a.topic, a.difficulty, a.subtask
from example_results a
join example_results b on b.example_idx = a.example_idx
join eval_runs ra on ra.eval_run_id = a.eval_run_id
join eval_runs rb on rb.eval_run_id = b.eval_run_id and rb.dataset_name = ra.dataset_name
where a.eval_run_id <> b.eval_run_id;
