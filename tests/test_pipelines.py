from __future__ import annotations

from pathlib import Path

import pytest

from forecaster.pipelines import SpecError, load_spec, spec_hash

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "pipelines").glob("*.toml"))


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir(exist_ok=True)
    path = folder / "spec.toml"
    path.write_text(text)
    return path


MINIMAL = """
[pipeline]
name = "mini"

[source]
dataset = "stocks"

[series]
id = "ticker"
time = "date"
targets = ["close"]
"""


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_specs_are_valid(path):
    spec, root = load_spec(path)
    assert root == REPO
    assert spec.pipeline.name == path.stem


def test_minimal_spec_gets_defaults_and_root(tmp_path):
    spec, root = load_spec(write(tmp_path, MINIMAL))
    assert root == tmp_path.resolve()
    assert spec.series.missing == "error"
    assert spec.output.dir == "outputs/{name}/{as_of}"
    assert len(spec_hash(spec)) == 12


def test_typo_key_names_file_key_and_suggestion(tmp_path):
    path = write(tmp_path, MINIMAL.replace("targets", "targetz"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message
    assert "unknown key 'series.targetz' (did you mean 'targets'?)" in message
    assert "missing required key 'series.targets'" in message


def test_wrong_type_and_allowed_values(tmp_path):
    path = write(tmp_path, MINIMAL + '\n[training]\ntrials = "many"\n')
    with pytest.raises(SpecError, match=r"key 'training.trials'.*integer.*received 'many'"):
        load_spec(path)
    path = write(
        tmp_path, MINIMAL.replace('targets = ["close"]', 'targets = ["close"]\nmissing = "drop"')
    )
    with pytest.raises(
        SpecError, match=r"key 'series.missing'.*'error', 'ffill', 'zero' or 'interpolate'"
    ):
        load_spec(path)


def test_unknown_model_parameter(tmp_path):
    path = write(tmp_path, MINIMAL + "\n[model]\nhidden_sise = 4\n")
    with pytest.raises(
        SpecError, match=r"unknown key 'model.hidden_sise' \(did you mean 'hidden_size'\?\)"
    ):
        load_spec(path)
    path = write(tmp_path, MINIMAL + '\n[model]\ntarget = "close"\n')
    with pytest.raises(SpecError, match=r"'model.target' belongs in \[series\]"):
        load_spec(path)
    path = write(tmp_path, MINIMAL + '\n[model]\nestimator = "XGBoost"\n')
    with pytest.raises(SpecError, match=r"model\.estimator"):
        load_spec(path)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(write(tmp_path, "[pipeline\nname="))


def test_source_rules(tmp_path):
    both = MINIMAL.replace('dataset = "stocks"', 'dataset = "stocks"\npath = "x.csv"')
    with pytest.raises(SpecError, match="exactly one of 'dataset'"):
        load_spec(write(tmp_path, both))
    outside = MINIMAL.replace('dataset = "stocks"', 'path = "../../etc/*.csv"\nformat = "csv"')
    with pytest.raises(SpecError, match="outside the project"):
        load_spec(write(tmp_path, outside))
    no_format = MINIMAL.replace('dataset = "stocks"', 'path = "data/*.csv"')
    with pytest.raises(SpecError, match=r"'source\.format' is required"):
        load_spec(write(tmp_path, no_format))


def test_output_template_placeholders(tmp_path):
    path = write(tmp_path, MINIMAL + '\n[output]\ndir = "out/{nme}"\n')
    with pytest.raises(SpecError, match="placeholders"):
        load_spec(path)
