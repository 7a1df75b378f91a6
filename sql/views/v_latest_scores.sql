-- v_latest_scores: grain = one row per model × dataset with a score.
-- The score at the model's highest-step checkpoint that has a completed, valued primary score
-- (score_choice 'latest'); n_checkpoints_scored counts the checkpoints scored on that dataset.
-- The 'latest' half of v_model_dataset_scores.
create or replace view v_latest_scores as
select * from v_model_dataset_scores where score_choice = 'latest';
