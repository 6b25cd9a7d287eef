"""Export stage: make pruning permanent and write every artifact format, with loaders that verify what they read."""
