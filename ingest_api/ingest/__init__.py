"""The write path of results: request models, the store, group commit, metric names, checkpoint ids."""
