-- v_best_scores: grain = one row per model × dataset with a score.
-- The best primary score over the model's checkpoints (max, or min where lower is better):
-- a maximum over noisy values, so optimistic; n_checkpoints_scored says over how many it was taken.
-- The 'best' half of v_model_dataset_scores.
create or replace view v_best_scores as
select * from v_model_dataset_scores where score_choice = 'best';
