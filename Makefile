# Two commands for a fresh machine (see README):  make run   and   make test
# The install step is idempotent: it runs again only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
# The CPU build of torch. Installed first so that the package's "torch>=2.4" installs nothing
# more (an unpinned torch pulls a multi-GB CUDA build). On a CUDA machine use, for example,
#   make test TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
TORCH_SPEC ?= torch==2.13.0

.PHONY: install run test test-fast lint docs wheel bench bench-peers bench-peers-install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_SPEC)
# the former distribution name of this package (now forecaster-rnn), in a .venv made before
	$(PY) -m pip show forecaster >/dev/null 2>&1 && $(PY) -m pip uninstall -q -y forecaster || true
	$(PY) -m pip install -q -e ".[all,dev,docs,notebooks]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/forecaster run pipelines/stocks_daily.toml

test: install
	$(PY) -m pytest -q

# The edit loop: everything but the tests marked slow (subprocess kills, servers, full runs).
test-fast: install
	$(PY) -m pytest -q -m "not slow"

# mypy: only errors not in mypy-baseline.txt fail (after fixing some, `mypy | mypy-baseline sync`).
lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy | $(VENV)/bin/mypy-baseline filter --allow-unsynced --no-colors

# The documentation site (mkdocs.yml) into site/; --strict: a broken link, a page missing from the
# nav or an API entry that does not resolve fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# A wheel and an sdist in dist/, bundled data sets included (`python -m zipfile -l dist/*.whl`).
# --no-isolation: built with the venv's setuptools (the dev extra pins the version pyproject's
# build-system needs), so no download. Install elsewhere with: pip install dist/forecaster_rnn-*.whl
wheel: install
	rm -rf dist
	$(PY) -m build --no-isolation --outdir dist .
	$(PY) -m zipfile -l dist/*.whl | grep -c "forecaster/datasets/data/" | xargs echo "data files in the wheel:"

bench: install
	$(PY) benchmarks/bench_windows.py

# Opt-in, never part of `make test` or .ci/run: neuralforecast and darts beside our models in one
# run (benchmarks/bench_peers.py), in a venv of their own so their pins never touch $(VENV).
# Torch is installed first from TORCH_SPEC for the same reason as above. Arguments: PEERS_ARGS.
PEERS_VENV ?= benchmarks/peers/.venv
PEERS_PY := $(PEERS_VENV)/bin/python
PEERS_STAMP := $(PEERS_VENV)/.install-stamp
PEERS_ARGS ?=

$(PEERS_STAMP): benchmarks/peers/requirements.txt benchmarks/peers/constraints.txt pyproject.toml
	test -x $(PEERS_PY) || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_PY) -m pip install -q --upgrade pip
	$(PEERS_PY) -c "import torch" 2>/dev/null || $(PEERS_PY) -m pip install -q $(TORCH_SPEC)
	$(PEERS_PY) -m pip install -q -r benchmarks/peers/requirements.txt -c benchmarks/peers/constraints.txt
	$(PEERS_PY) -m pip install -q -e . -c benchmarks/peers/constraints.txt
	touch $(PEERS_STAMP)

bench-peers-install: $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP)
	$(PEERS_PY) benchmarks/bench_peers.py $(PEERS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
