"""Models, data, training and the L1 magnitude-pruning sweep (first stage of the pipeline)."""
