"""Scheduled jobs: pipeline specs, runs and the ``forecaster`` command line.

The modules, in import order: ``scores`` (the scores a spec may name: ``[evaluation]
metrics`` and ``training.objective``), :mod:`~forecaster.jobs.spec` (the TOML spec), ``hashing``
(the spec hash), ``schedule``
(stale series, future covariates beyond the as-of, holidays), ``data`` (the spec's data and its
as-of), ``outputs`` (run folders, manifests, locks, model reuse), ``summaries`` (what each
command did: ``summary.json`` of a run, ``<file>.summary.json`` of ``predict`` and ``backtest``),
``placement`` (where outputs may go; :func:`load_spec`), ``tracked`` (MLflow), ``fitting`` (the
run's model: fitted, tuned or reused), ``intervals`` (the prediction intervals of ``[output]
levels``: calibration, scores, plot), ``run`` (the pipeline run), ``commands`` (the commands),
``parser`` (the command line's arguments and exit codes, light to import) and ``cli`` (the
command line). The public names below are imported on first use.
"""

from __future__ import annotations

from forecaster._lazy import lazy_attributes

# Where each public name lives, imported on first use (see :mod:`forecaster._lazy`): the
# ``forecaster`` command imports this package before it parses its arguments, and its
# ``--help`` must not wait for PyTorch, Polars or scikit-learn.
_ORIGINS = {
    "AsOf": "forecaster.jobs.data",
    "PipelineResult": "forecaster.jobs.outputs",
    "Spec": "forecaster.jobs.spec",
    "SpecError": "forecaster.jobs.spec",
    "as_of_label": "forecaster.jobs.data",
    "build_estimator": "forecaster.jobs.spec",
    "build_parser": "forecaster.jobs.parser",
    "checkpoint_folder": "forecaster.jobs.placement",
    "fit_with_checkpoints": "forecaster.jobs.fitting",
    "load_data": "forecaster.jobs.data",
    "load_spec": "forecaster.jobs.placement",
    "main": "forecaster.jobs.cli",
    "output_dir": "forecaster.jobs.spec",
    "output_lock": "forecaster.jobs.output_locks",
    "path_problem": "forecaster.jobs.placement",
    "prepare_data": "forecaster.jobs.data",
    "run_pipeline": "forecaster.jobs.run",
    "spec_hash": "forecaster.jobs.hashing",
    "spec_path": "forecaster.jobs.spec",
    "storage_url": "forecaster.jobs.spec",
    "study_name": "forecaster.jobs.fitting",
    "tracked_run": "forecaster.jobs.tracked",
    "translated_errors": "forecaster.jobs.entry_errors",
    "tune_model": "forecaster.jobs.fitting",
    "tuned_model_dir": "forecaster.jobs.fitting",
}

__all__ = [
    "AsOf",
    "PipelineResult",
    "Spec",
    "SpecError",
    "as_of_label",
    "build_estimator",
    "build_parser",
    "checkpoint_folder",
    "fit_with_checkpoints",
    "load_data",
    "load_spec",
    "main",
    "output_dir",
    "output_lock",
    "path_problem",
    "prepare_data",
    "run_pipeline",
    "spec_hash",
    "spec_path",
    "storage_url",
    "study_name",
    "tracked_run",
    "translated_errors",
    "tune_model",
    "tuned_model_dir",
]

__getattr__, __dir__ = lazy_attributes(__name__, _ORIGINS, __all__)
