"""Import time of forecaster and start-up time of its command line, in fresh interpreters.

Each method is one fresh ``python`` process, timed from its start to its exit (wall clock, so
interpreter start-up is included in every row); the methods run interleaved (one of each per
round, in a rotating order) for ``--repeats`` rounds, and the rows are medians. The reference
is measured in the same run:

- ``python``: ``python -c pass`` (the interpreter alone);
- ``torch+polars``: ``import torch, polars`` (the libraries forecaster is built on);
- ``torch+polars+forecaster``: ``import torch, polars, forecaster``, the process also timing
  its ``import forecaster`` (after torch and polars) itself; the target is at most 0.5 s
  more than ``torch+polars``, judged on that in-process time (the difference of the two rows'
  medians is shown too: on a busy machine it is mostly the noise of importing torch);
- ``first model``: ``import torch, polars; from forecaster import LSTMForecaster`` (what a
  training script imports: the estimators and scikit-learn, whose ``BaseEstimator`` they
  extend), for information;
- ``forecaster --help``: what the console script ``forecaster = forecaster.jobs.cli:main``
  runs; the target is at most 1 s, with no PyTorch imported (checked in every run).

``--before PATH`` adds the same rows for another checkout of the package (e.g. ``/work/main``
before a change), put first on ``PYTHONPATH``, in the same interleaved rounds. The other
processes' CPU use during each run is recorded (``other_cpus``, see ``_machine.py``); rounds
start after the machine was idle for a moment when ``--wait-idle`` allows.

Run::

    python benchmarks/bench_import.py                      # 7 rounds
    python benchmarks/bench_import.py --before /work/main  # also an older checkout
    python benchmarks/bench_import.py --quick              # smoke run (3 rounds)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _machine import Timed, machine_info, wait_for_idle, write_result

REPO = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = "import sys; from forecaster.jobs.cli import main; sys.exit(main())"
METHODS: dict[str, list[str]] = {
    "python": ["-c", "pass"],
    "torch+polars": ["-c", "import torch, polars"],
    "torch+polars+forecaster": [
        "-c",
        "import time, torch, polars; t = time.perf_counter(); import forecaster; "
        "print(time.perf_counter() - t)",
    ],
    "first model": ["-c", "import torch, polars; from forecaster import LSTMForecaster"],
    "forecaster --help": ["-c", CONSOLE_SCRIPT, "--help"],
}
HELP = "forecaster --help"
HEAVY = ("torch", "polars", "numpy", "sklearn", "scipy", "pandas", "optuna", "mlflow", "matplotlib")
IMPORT_TARGET_S, HELP_TARGET_S = 0.5, 1.0


def run_once(args: list[str], package: Path) -> dict:
    """One fresh interpreter with ``package`` first on its path: its wall time and the other
    processes' CPU use meanwhile."""
    env = dict(os.environ, PYTHONPATH=str(package))
    with Timed() as t:
        done = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env=env, cwd=package
        )
    if done.returncode != 0:
        sys.exit(f"{args} failed with exit code {done.returncode}:\n{done.stderr[-3000:]}")
    row = {"seconds": t.seconds, "other_cpus": t.other_cpus}
    if args[1].startswith("import time,"):  # the process timed its own `import forecaster`
        row["in_process_s"] = float(done.stdout.strip().splitlines()[-1])
    return row


def imported_modules(args: list[str], package: Path) -> set[str]:
    """The top-level modules a fresh ``python -X importtime ARGS`` imported (not timed)."""
    env = dict(os.environ, PYTHONPATH=str(package))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=package,
        check=True,
    )
    return {
        line.rpartition("|")[2].strip().partition(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }


def measure(packages: dict[str, Path], repeats: int, wait_idle: float) -> dict[str, list[dict]]:
    """``repeats`` interleaved rounds of every method for every package, rotating the order."""
    jobs = [(tag, name) for tag in packages for name in METHODS]
    runs: dict[str, list[dict]] = {f"{tag}: {name}": [] for tag, name in jobs}
    for round_ in range(repeats):
        if wait_idle > 0:
            wait_for_idle(wait_idle, threshold=0.3)
        shift = round_ % len(jobs)
        for tag, name in jobs[shift:] + jobs[:shift]:
            runs[f"{tag}: {name}"].append(run_once(METHODS[name], packages[tag]))
        print(f"round {round_ + 1}/{repeats} done", flush=True)
    return runs


def summarise(runs: dict[str, list[dict]], packages: dict[str, Path]) -> dict[str, dict]:
    """Medians per row, and per checkout the two targets' numbers and verdicts."""
    rows = {
        key: {
            "median_s": statistics.median(r["seconds"] for r in rs),
            "min_s": min(r["seconds"] for r in rs),
            "max_other_cpus": max((r["other_cpus"] or 0.0) for r in rs),
        }
        for key, rs in runs.items()
    }
    verdicts = {}
    for tag, path in packages.items():
        both = f"{tag}: torch+polars+forecaster"
        added = statistics.median(r["in_process_s"] for r in runs[both])
        difference = rows[both]["median_s"] - rows[f"{tag}: torch+polars"]["median_s"]
        help_s = rows[f"{tag}: {HELP}"]["median_s"]
        help_modules = imported_modules(METHODS[HELP], path)
        import_modules = imported_modules(["-c", "import forecaster"], path)
        heavy = sorted(import_modules & set(HEAVY))
        verdicts[tag] = {
            "import_adds_s": added,
            "difference_of_medians_s": difference,
            "import_pass": added <= IMPORT_TARGET_S,
            "import_forecaster_loads": heavy,
            "help_s": help_s,
            "help_imports_torch": "torch" in help_modules,
            "help_pass": help_s <= HELP_TARGET_S and "torch" not in help_modules,
        }
    return {"rows": rows, "verdicts": verdicts}


def table(summary: dict, packages: dict[str, Path], repeats: int, info: dict) -> str:
    lines = [
        f"**Import and command-line start-up time** (fresh interpreters, wall clock including "
        f"interpreter start-up, medians of {repeats} interleaved rounds; "
        f"{info.get('cpu_model', info['processor'])}, {info['cpu_count']} CPUs).",
        "",
        "| checkout | what runs | median | min | other processes' CPUs (max) |",
        "|---|---|---:|---:|---:|",
    ]
    for tag in packages:
        for name in METHODS:
            row = summary["rows"][f"{tag}: {name}"]
            lines.append(
                f"| {tag} | `{name}` | {row['median_s']:.2f} s | {row['min_s']:.2f} s | "
                f"{row['max_other_cpus']:.2f} |"
            )
    lines.append("")
    for tag, verdict in summary["verdicts"].items():
        loads = ", ".join(verdict["import_forecaster_loads"]) or "none of " + ", ".join(HEAVY)
        lines.append(
            f"- {tag} ({packages[tag]}): `import forecaster` adds "
            f"{verdict['import_adds_s']:.3f} s to `import torch, polars` (median, timed in the "
            f"process; difference of the rows' medians {verdict['difference_of_medians_s']:+.2f} "
            f"s; target <= {IMPORT_TARGET_S} s: {'PASS' if verdict['import_pass'] else 'FAIL'}; "
            f"on its own it "
            f"loads {loads}); `forecaster --help` {verdict['help_s']:.2f} s, torch "
            f"{'imported' if verdict['help_imports_torch'] else 'not imported'} (target <= "
            f"{HELP_TARGET_S} s without torch: {'PASS' if verdict['help_pass'] else 'FAIL'})."
        )
    lines += [
        "",
        f"Measured {info['date']}, Python {info['python']}, torch {info['torch']}, polars "
        f"{info['polars']}. Reproduce: `python benchmarks/bench_import.py`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--before", type=Path, help="another checkout to measure in the same run")
    parser.add_argument("--wait-idle", type=float, default=20.0, help="seconds per round, at most")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.wait_idle = 3, 0.0
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    packages = {"this checkout": REPO}
    if args.before is not None:
        if not (args.before / "forecaster" / "__init__.py").is_file():
            parser.error(f"--before must be a checkout holding forecaster/, got {args.before}")
        packages = {"before": args.before.resolve(), "this checkout": REPO}
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    runs = measure(packages, args.repeats, args.wait_idle)
    summary = summarise(runs, packages)
    info = machine_info()
    report = {
        "config": {"repeats": args.repeats, "wait_idle": args.wait_idle, "quick": args.quick},
        "methods": {name: " ".join(argv) for name, argv in METHODS.items()},
        "packages": {tag: str(path) for tag, path in packages.items()},
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "wall_s": time.perf_counter() - t0,
        "machine": info,
        "runs": runs,
        **summary,
    }
    text = table(summary, packages, args.repeats, info)
    text += (
        f"\nLoad average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after: {', '.join(f'{x:.2f}' for x in report['loadavg_after'])}.\n"
    )
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "imports_quick" if args.quick else "imports"
    write_result(out / f"{name}.json", json.dumps(report, indent=2, default=str))
    write_result(out / f"{name}.md", text)


if __name__ == "__main__":
    main()
