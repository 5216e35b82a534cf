"""Experiment tracking with Weights & Biases.

The run directory's own files (config.yaml, metrics.csv, result.json) stay the source of truth: a
missing or failing wandb warns once per run and the run goes on without it; nothing here ever raises
into the training loop. One module per concept:

- ``modes``: which W&B mode a run uses (``auto`` decided from credentials, without network);
- ``guard``: the one place ``wandb`` is imported, so that a broken install is a warning, not an error;
- ``naming``: project, run id, name, group and tags of a run's W&B run;
- ``tracker``: the W&B run that the training loop feeds, epoch by epoch, resumable;
- ``report_run``: a sweep's report tables and figures logged as one W&B run;
- ``sync``: uploading a sweep's offline runs (``isda-bench wandb sync``);
- ``reader``: reading wandb's ``.wandb`` transaction logs back without wandb's service.
"""
