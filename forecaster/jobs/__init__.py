"""Scheduled jobs: pipeline specs, runs and the ``forecaster`` command line.

The modules, in import order: ``scores`` (the scores a spec may name: ``[evaluation]
metrics`` and ``training.objective``), :mod:`~forecaster.jobs.spec` (the TOML spec), ``schedule``
(stale series, future covariates beyond the as-of, holidays), ``data`` (the spec's data and its
as-of), ``outputs`` (run folders, manifests, locks, model reuse),
``placement`` (where outputs may go; :func:`load_spec`), ``tracked`` (MLflow), ``fitting`` (the
run's model: fitted, tuned or reused), ``intervals`` (the prediction intervals of ``[output]
levels``: calibration, scores, plot), ``run`` (the pipeline run), ``commands`` (the commands)
and ``cli`` (the command line).
"""

from __future__ import annotations

from forecaster.jobs.cli import build_parser, main
from forecaster.jobs.data import AsOf, as_of_label, load_data, prepare_data
from forecaster.jobs.fitting import fit_with_checkpoints, study_name, tune_model, tuned_model_dir
from forecaster.jobs.outputs import PipelineResult, output_lock
from forecaster.jobs.placement import checkpoint_folder, load_spec
from forecaster.jobs.run import run_pipeline, translated_errors
from forecaster.jobs.spec import (
    Spec,
    SpecError,
    build_estimator,
    output_dir,
    path_problem,
    spec_path,
    storage_url,
)
from forecaster.jobs.tracked import tracked_run

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
    "spec_path",
    "storage_url",
    "study_name",
    "tracked_run",
    "translated_errors",
    "tune_model",
    "tuned_model_dir",
]
