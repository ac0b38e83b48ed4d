"""Tests for forecaster.datasets: bundled stock prices, FSDD MFCC loader and catalogue."""

from __future__ import annotations

import datetime as dt
import gzip
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecaster import datasets
from forecaster.datasets import (
    DATASETS_DIR_ENV,
    STOCK_TICKERS,
    datasets_dir,
    list_datasets,
    load_audio_mfcc,
    load_stocks,
)
from forecaster.exceptions import DataValidationError, ForecasterError, ForecasterWarning

REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_DATASETS = REPO_ROOT / "forecaster" / "datasets" / "data"

# Measured from the bundled files; the data cards (data/*/README.md) quote the same numbers.
EXPECTED_STOCKS = {
    # ticker: (rows, first date, last date)
    "GOOG": (1047, dt.date(2004, 8, 19), dt.date(2008, 10, 14)),
    "IXIC": (5031, dt.date(1999, 1, 4), dt.date(2018, 12, 31)),
    "MSFT": (7983, dt.date(1986, 3, 13), dt.date(2017, 11, 10)),
    "NDX": (2862, dt.date(1990, 1, 2), dt.date(2001, 4, 30)),
    "SPX": (5031, dt.date(1999, 1, 4), dt.date(2018, 12, 31)),
}
STOCK_SCHEMA = pl.Schema(
    {
        "ticker": pl.String,
        "date": pl.Date,
        "open": pl.Float64,
        "high": pl.Float64,
        "low": pl.Float64,
        "close": pl.Float64,
        "volume": pl.Float64,
    }
)
FSDD_CLIPS = sorted(f"{d}_{s}_0" for s in ("jackson", "theo") for d in range(10))


@pytest.fixture(autouse=True)
def _no_datasets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from the default data location whatever the caller's environment says."""
    monkeypatch.delenv(DATASETS_DIR_ENV, raising=False)


@pytest.fixture(scope="module")
def stocks() -> pl.DataFrame:
    return load_stocks()


@pytest.fixture(scope="module")
def fsdd_mfcc() -> pl.DataFrame:
    pytest.importorskip("librosa")
    return load_audio_mfcc()


@pytest.fixture(scope="module")
def manifest() -> pl.DataFrame:
    return pl.read_csv(REPO_DATASETS / "audio" / "fsdd_manifest.csv")


def _write_wav(path: Path, signal: np.ndarray, sr: int) -> Path:
    pytest.importorskip("librosa")  # every caller goes on to load_audio_mfcc
    sf = pytest.importorskip("soundfile")
    sf.write(str(path), signal, sr, subtype="PCM_16")
    return path


def _tone(n: int, sr: int, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# datasets_dir
# --------------------------------------------------------------------------------------------


def test_datasets_dir_defaults_to_package_data() -> None:
    # The tests import the checkout's package, so its data folder is the one in the tree.
    assert datasets_dir() == REPO_DATASETS
    assert datasets_dir() == Path(datasets.__file__).resolve().parent / "data"
    assert (datasets_dir() / "stocks").is_dir()
    assert (datasets_dir() / "audio" / "fsdd").is_dir()


def test_top_level_datasets_folder_only_points_to_the_package() -> None:
    # The agreed layout keeps a top-level datasets/ folder; it now only says where the data is.
    top = REPO_ROOT / "datasets"
    assert sorted(p.name for p in top.iterdir()) == ["README.md"]
    assert "forecaster/datasets/data/" in (top / "README.md").read_text()


def test_datasets_dir_env_override_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stocks_dir = tmp_path / "stocks"
    stocks_dir.mkdir()
    # Columns in another order, with an extra one, as the upstream files differ.
    csv = (
        "date,close,volume,low,high,open,adj_close\n"
        "2020-01-03,3.0,30,2.5,3.5,2.8,3.0\n"
        "2020-01-02,2.0,20,1.5,2.5,1.8,2.0\n"
    )
    (stocks_dir / "msft_daily_1986_2017_pmdarima.csv.gz").write_bytes(gzip.compress(csv.encode()))
    monkeypatch.setenv(DATASETS_DIR_ENV, str(tmp_path))

    assert datasets_dir() == tmp_path
    frame = load_stocks(["MSFT"])
    assert frame.schema == STOCK_SCHEMA
    assert frame["date"].to_list() == [dt.date(2020, 1, 2), dt.date(2020, 1, 3)]
    assert frame.row(0) == ("MSFT", dt.date(2020, 1, 2), 1.8, 2.5, 1.5, 2.0, 20.0)

    with pytest.raises(DataValidationError, match="goog_daily_2004_2008_matplotlib"):
        load_stocks(["GOOG"])  # not in the override folder


def test_datasets_dir_env_pointing_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATASETS_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(DataValidationError, match=DATASETS_DIR_ENV):
        datasets_dir()
    with pytest.raises(DataValidationError, match=DATASETS_DIR_ENV):
        load_stocks()


def test_datasets_dir_missing_package_data_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if an installation had lost the package data (a build that dropped it).
    missing = tmp_path / "site-packages" / "forecaster" / "datasets" / "data"
    monkeypatch.setattr(datasets, "_package_data", lambda: missing)
    with pytest.raises(DataValidationError, match=f"export {DATASETS_DIR_ENV}=") as info:
        datasets_dir()
    assert str(missing) in str(info.value)
    # From the wheel or a clone (installation.md): the package index has no forecaster-rnn, and
    # `pip install --force-reinstall forecaster` installs another project (was: advised
    # `pip install --force-reinstall forecaster-rnn`, which fails).
    advice = "`pip install --force-reinstall --no-deps <the forecaster_rnn wheel, or a clone's"
    assert advice in str(info.value) and "not on the package index" in str(info.value)
    assert "--force-reinstall forecaster-rnn" not in str(info.value)
    with pytest.raises(DataValidationError, match="lacks its data files"):
        load_stocks(["MSFT"])
    monkeypatch.setenv(DATASETS_DIR_ENV, str(tmp_path))  # a data folder without the file
    missing_file = pytest.raises(DataValidationError, match="nothing does not exist")
    with missing_file as info, datasets._bundled_path("stocks", "nothing"):
        pass
    assert advice in str(info.value) and "forecaster-rnn" not in str(info.value)


def test_package_data_inside_an_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A package imported from a zip file: importlib.resources hands out zipfile.Path objects.
    # The loaders read through temporary copies (importlib.resources.as_file); there is no
    # folder on disk to return, and datasets_dir says how to get one.
    # The clips are a folder, which as_file extracts only from Python 3.12 on (was: a raw
    # IsADirectoryError on 3.11).
    archive = tmp_path / "forecaster.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(REPO_DATASETS.rglob("*")):
            if file.is_file() and file.parent.name in {"stocks", "audio", "fsdd"}:
                zf.write(file, f"forecaster/datasets/data/{file.relative_to(REPO_DATASETS)}")
    root = zipfile.Path(archive, "forecaster/datasets/data/")
    monkeypatch.setattr(datasets, "_package_data", lambda: root)

    assert load_stocks(["NDX"]).equals(_reference_ndx())
    assert list_datasets().select("name", "rows", "series").rows() == [
        ("stocks", 21954, 5),
        ("audio", 871, 20),
    ]
    with pytest.raises(DataValidationError, match=f"inside an archive .*{DATASETS_DIR_ENV}"):
        datasets_dir()
    missing = pytest.raises(DataValidationError, match=r"audio.nothing does not exist")
    with missing, datasets._bundled_path("audio", "nothing"):
        pass
    pytest.importorskip("librosa")
    from_archive = load_audio_mfcc()
    assert from_archive.shape == (871, 15)
    assert sorted(from_archive["clip"].unique()) == FSDD_CLIPS


def _reference_ndx() -> pl.DataFrame:
    """NDX read straight from the checkout's file, bypassing the loader's locating code."""
    raw = pl.read_csv(
        REPO_DATASETS / "stocks" / "ndx_nasdaq100_daily_1990_2001_nolds.csv.gz",
        schema_overrides={"date": pl.Date},
    )
    return raw.select(
        pl.lit("NDX").alias("ticker"),
        "date",
        *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
    ).sort("date")


# --------------------------------------------------------------------------------------------
# load_stocks
# --------------------------------------------------------------------------------------------


def test_load_stocks_schema_and_tickers(stocks: pl.DataFrame) -> None:
    assert stocks.schema == STOCK_SCHEMA
    assert "openint" not in stocks.columns
    assert "adj_close" not in stocks.columns
    assert tuple(stocks["ticker"].unique().sort()) == STOCK_TICKERS == tuple(EXPECTED_STOCKS)


def test_load_stocks_sorted_by_ticker_then_date(stocks: pl.DataFrame) -> None:
    assert stocks.equals(stocks.sort(["ticker", "date"]))
    assert stocks.select(pl.struct("ticker", "date").is_duplicated().any()).item() is False


def test_load_stocks_rows_and_spans_per_ticker(stocks: pl.DataFrame) -> None:
    summary = stocks.group_by("ticker").agg(
        pl.len().alias("rows"), pl.col("date").min().alias("first"), pl.col("date").max()
    )
    measured = {t: (rows, first, last) for t, rows, first, last in summary.iter_rows()}
    assert measured == EXPECTED_STOCKS


def test_load_stocks_has_no_nulls_and_sane_prices(stocks: pl.DataFrame) -> None:
    assert stocks.null_count().row(0) == (0,) * stocks.width
    prices = ["open", "high", "low", "close"]
    assert stocks.select(pl.all_horizontal(pl.col(prices).is_finite()).all()).item()
    assert stocks.select((pl.col(prices) > 0).all()).row(0) == (True,) * 4
    assert stocks.filter(pl.col("low") > pl.col("high")).is_empty()
    assert stocks.filter(
        (pl.col("close") > pl.col("high")) | (pl.col("close") < pl.col("low"))
    ).is_empty()
    # Trading days only: no Saturdays or Sundays.
    assert stocks.filter(pl.col("date").dt.weekday() > 5).is_empty()


def test_load_stocks_known_quirks(stocks: pl.DataFrame) -> None:
    # Documented in data/stocks/README.md: a few sessions report zero volume.
    zero_volume = stocks.filter(pl.col("volume") == 0).select("ticker", "date").rows()
    assert zero_volume == [
        ("IXIC", dt.date(2015, 5, 12)),
        ("IXIC", dt.date(2018, 1, 9)),
        ("MSFT", dt.date(2010, 4, 26)),
    ]
    # Market closures after 9/11: the US series jump from 2001-09-10 to 2001-09-17.
    for ticker in ("IXIC", "MSFT", "SPX"):
        dates = stocks.filter(ticker=ticker)["date"]
        i = dates.index_of(dt.date(2001, 9, 17))
        assert dates[i - 1] == dt.date(2001, 9, 10)
    # The two arch indices cover exactly the same trading days.
    spx = stocks.filter(ticker="SPX")["date"]
    ixic = stocks.filter(ticker="IXIC")["date"]
    assert spx.equals(ixic)


def test_load_stocks_values_are_unchanged(stocks: pl.DataFrame) -> None:
    # First data line of msft_daily_1986_2017_pmdarima.csv:
    # 1986-03-13,0.0672,0.07533,0.0672,0.07533,1371330506,0
    msft = stocks.filter(ticker="MSFT")
    assert msft.row(0) == (
        "MSFT",
        dt.date(1986, 3, 13),
        0.0672,
        0.07533,
        0.0672,
        0.07533,
        1371330506.0,
    )
    # Last line of goog_daily_2004_2008_matplotlib.csv, read back raw.
    raw = pl.read_csv(REPO_DATASETS / "stocks" / "goog_daily_2004_2008_matplotlib.csv.gz")
    last = raw.row(-1, named=True)
    goog_last = stocks.filter(ticker="GOOG").row(-1, named=True)
    for col in ("open", "high", "low", "close", "volume"):
        assert goog_last[col] == last[col]


@pytest.mark.parametrize(
    ("tickers", "expected"),
    [
        (["MSFT"], ["MSFT"]),
        ("ndx", ["NDX"]),  # a single string, any case
        (("SPX", "GOOG", "spx"), ["GOOG", "SPX"]),  # de-duplicated, output sorted
        (None, list(STOCK_TICKERS)),
    ],
)
def test_load_stocks_ticker_filter(tickers, expected: list[str], stocks: pl.DataFrame) -> None:
    frame = load_stocks(tickers)
    assert frame["ticker"].unique(maintain_order=True).to_list() == expected
    assert frame.height == sum(EXPECTED_STOCKS[t][0] for t in expected)
    assert frame.equals(stocks.filter(pl.col("ticker").is_in(expected)))


def test_load_stocks_unknown_ticker_lists_available() -> None:
    with pytest.raises(DataValidationError, match="AAPL") as info:
        load_stocks(["MSFT", "AAPL"])
    for ticker in STOCK_TICKERS:
        assert ticker in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ForecasterError)


@pytest.mark.parametrize("tickers", [[], ["MSFT", 3]])
def test_load_stocks_rejects_bad_ticker_lists(tickers) -> None:
    with pytest.raises(DataValidationError, match="MSFT, NDX, SPX"):
        load_stocks(tickers)


# --------------------------------------------------------------------------------------------
# load_audio_mfcc: bundled clips
# --------------------------------------------------------------------------------------------


def test_bundled_clips_match_manifest(manifest: pl.DataFrame) -> None:
    sf = pytest.importorskip("soundfile")
    wavs = sorted(p.name for p in (REPO_DATASETS / "audio" / "fsdd").glob("*.wav"))
    assert wavs == sorted(manifest["file"].to_list())
    assert sorted(Path(w).stem for w in wavs) == FSDD_CLIPS
    for row in manifest.iter_rows(named=True):
        info = sf.info(str(REPO_DATASETS / "audio" / "fsdd" / row["file"]))
        assert (info.samplerate, info.channels, info.frames) == (8000, 1, row["n_samples"])


def test_load_audio_mfcc_schema_and_order(fsdd_mfcc: pl.DataFrame) -> None:
    expected = {"clip": pl.String, "frame": pl.Int64} | {f"mfcc_{i}": pl.Float32 for i in range(13)}
    assert fsdd_mfcc.schema == pl.Schema(expected)
    assert fsdd_mfcc["clip"].unique().sort().to_list() == FSDD_CLIPS
    assert fsdd_mfcc.equals(fsdd_mfcc.sort(["clip", "frame"]))
    assert fsdd_mfcc.null_count().row(0) == (0,) * fsdd_mfcc.width
    assert fsdd_mfcc.select(pl.all_horizontal(pl.col("^mfcc_.*$").is_finite()).all()).item()


def test_load_audio_mfcc_frames_follow_clip_length(
    fsdd_mfcc: pl.DataFrame, manifest: pl.DataFrame
) -> None:
    per_clip = fsdd_mfcc.group_by("clip").agg(
        pl.len().alias("n"), pl.col("frame").min().alias("lo"), pl.col("frame").max().alias("hi")
    )
    expected = manifest.select(
        pl.col("file").str.strip_suffix(".wav").alias("clip"),
        (1 + pl.col("n_samples") // 80).cast(pl.UInt32).alias("expected"),
    )
    joined = per_clip.join(expected, on="clip", how="full", validate="1:1")
    assert joined.height == 20
    assert (joined["n"] == joined["expected"]).all()  # [sr / hop_length * duration] frames
    assert (joined["lo"] == 0).all()
    assert (joined["hi"] == joined["n"] - 1).all()  # contiguous 0 .. n-1
    assert fsdd_mfcc.height == 871
    assert joined["n"].min() == 24 and joined["n"].max() == 83  # variable-length sequences


def test_load_audio_mfcc_matches_librosa(fsdd_mfcc: pl.DataFrame) -> None:
    librosa = pytest.importorskip("librosa")
    sf = pytest.importorskip("soundfile")
    y, sr = sf.read(str(REPO_DATASETS / "audio" / "fsdd" / "7_theo_0.wav"), dtype="float32")
    ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, hop_length=80, n_fft=256, n_mels=40)
    got = fsdd_mfcc.filter(clip="7_theo_0").select(pl.col("^mfcc_.*$")).to_numpy()
    assert got.shape == ref.T.shape
    np.testing.assert_allclose(got, ref.T, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(("n_fft", "n_mels", "empty"), [(2, 40, 40), (256, 1024, 770)])
def test_load_audio_mfcc_refuses_empty_mel_bands(n_fft: int, n_mels: int, empty: int) -> None:
    """n_fft=2 left every mel band empty at 8 kHz: every coefficient of every clip was one
    constant, and the only sign was librosa's warning, once per clip."""
    pytest.importorskip("librosa")
    with pytest.raises(DataValidationError, match=rf"leave {empty} of the {n_mels} mel bands"):
        load_audio_mfcc(n_fft=n_fft, n_mels=n_mels, n_mfcc=13)


# --------------------------------------------------------------------------------------------
# load_audio_mfcc: custom folders
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_samples", "hop_length"), [(4000, 160), (4321, 160), (2500, 64)])
def test_frame_count_follows_librosa_formula(
    tmp_path: Path, n_samples: int, hop_length: int
) -> None:
    librosa = pytest.importorskip("librosa")
    sr = 16000
    _write_wav(tmp_path / "tone.wav", _tone(n_samples, sr), sr)
    frame = load_audio_mfcc(tmp_path, n_mfcc=5, hop_length=hop_length, n_fft=512)
    # librosa centres frames: 1 + n // hop frames, i.e. about sr / hop_length * duration.
    assert frame.height == 1 + n_samples // hop_length
    y = np.zeros(n_samples, dtype=np.float32)
    direct = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=5, hop_length=hop_length, n_fft=512)
    assert frame.height == direct.shape[1]
    assert frame.columns == ["clip", "frame", *(f"mfcc_{i}" for i in range(5))]


def test_custom_folder_variable_lengths_pattern_and_resampling(tmp_path: Path) -> None:
    sr = 16000
    _write_wav(tmp_path / "long.wav", _tone(8000, sr, 300.0), sr)  # 0.5 s
    _write_wav(tmp_path / "short.wav", _tone(4000, sr, 600.0), sr)  # 0.25 s
    (tmp_path / "notes.txt").write_text("not audio")

    native = load_audio_mfcc(tmp_path, hop_length=160, n_fft=512, n_mels=40)
    counts = dict(native.group_by("clip").len().iter_rows())
    assert counts == {"long": 1 + 8000 // 160, "short": 1 + 4000 // 160}
    assert native["clip"].to_list()[0] == "long"  # sorted by clip

    resampled = load_audio_mfcc(tmp_path, sample_rate=8000, hop_length=80, n_fft=256)
    counts = dict(resampled.group_by("clip").len().iter_rows())
    assert counts == {"long": 1 + 4000 // 80, "short": 1 + 2000 // 80}

    only_short = load_audio_mfcc(tmp_path, pattern="s*.wav", hop_length=160, n_fft=512)
    assert only_short["clip"].unique().to_list() == ["short"]
    assert only_short.equals(native.filter(clip="short"))


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    sr = 8000
    mono = _tone(3000, sr)
    mono_dir, stereo_dir = tmp_path / "mono", tmp_path / "stereo"
    mono_dir.mkdir()
    stereo_dir.mkdir()
    _write_wav(mono_dir / "a.wav", mono, sr)
    _write_wav(stereo_dir / "a.wav", np.stack([mono, mono], axis=1), sr)
    assert load_audio_mfcc(stereo_dir).equals(load_audio_mfcc(mono_dir))


def test_recursive_pattern_and_duplicate_clip_names(tmp_path: Path) -> None:
    sr = 8000
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        _write_wav(tmp_path / sub / "clip.wav", _tone(2000, sr), sr)
    _write_wav(tmp_path / "b" / "other.wav", _tone(1000, sr), sr)
    assert load_audio_mfcc(tmp_path / "b")["clip"].unique().sort().to_list() == ["clip", "other"]
    with pytest.raises(DataValidationError, match="clip"):
        load_audio_mfcc(tmp_path, pattern="**/*.wav")


# --------------------------------------------------------------------------------------------
# load_audio_mfcc: errors
# --------------------------------------------------------------------------------------------


def test_missing_folder(tmp_path: Path) -> None:
    pytest.importorskip("librosa")
    with pytest.raises(DataValidationError, match="does not exist"):
        load_audio_mfcc(tmp_path / "nope")


def test_no_matching_files(tmp_path: Path) -> None:
    pytest.importorskip("librosa")
    (tmp_path / "readme.txt").write_text("no audio here")
    with pytest.raises(DataValidationError, match=r"No audio files match pattern '\*\.wav'"):
        load_audio_mfcc(tmp_path)
    _write_wav(tmp_path / "x.wav", _tone(1000, 8000), 8000)
    with pytest.raises(DataValidationError, match="No audio files match"):
        load_audio_mfcc(tmp_path, pattern="*.flac")


def test_corrupt_wav_names_the_file(tmp_path: Path) -> None:
    _write_wav(tmp_path / "good.wav", _tone(2000, 8000), 8000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(64)))
    with pytest.raises(DataValidationError, match=r"broken\.wav"):
        load_audio_mfcc(tmp_path)


def test_empty_wav_is_rejected(tmp_path: Path) -> None:
    _write_wav(tmp_path / "silent.wav", np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(DataValidationError, match=r"silent\.wav has no samples"):
        load_audio_mfcc(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_mfcc": 0}, r"n_mfcc must be an integer >= 1, got 0"),
        ({"n_mfcc": -3}, r"n_mfcc must be an integer >= 1, got -3"),
        ({"n_mfcc": 2.5}, r"n_mfcc must be an integer >= 1, got 2\.5 \(a float\)"),
        ({"n_mfcc": True}, r"n_mfcc must be an integer >= 1, got True \(a bool\)"),
        ({"n_mfcc": "13"}, r"n_mfcc must be an integer >= 1, got '13' \(a string\)"),
        ({"n_mfcc": 41}, r"n_mfcc must be <= n_mels .* received n_mfcc=41 and n_mels=40"),
        ({"hop_length": 0}, r"hop_length must be an integer >= 1, got 0"),
        ({"hop_length": 80.0}, r"hop_length must be an integer >= 1, got 80\.0 \(a float\)"),
        ({"n_fft": -1}, r"n_fft must be an integer >= 1, got -1"),
        ({"sample_rate": 0}, r"sample_rate must be an integer >= 1 or None, got 0"),
        ({"pattern": ""}, r"pattern must be a non-empty glob"),
    ],
)
def test_bad_parameters_say_expected_and_received(kwargs: dict, message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        load_audio_mfcc(**kwargs)


def test_numpy_integers_are_accepted(tmp_path: Path) -> None:
    _write_wav(tmp_path / "a.wav", _tone(1600, 8000), 8000)
    frame = load_audio_mfcc(tmp_path, n_mfcc=np.int64(4), hop_length=np.int32(160))
    assert frame.shape == (1 + 1600 // 160, 2 + 4)


def test_missing_librosa_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "librosa", None)  # makes `import librosa` fail
    with pytest.raises(ImportError, match=r'pip install "forecaster-rnn\[audio\]"'):
        load_audio_mfcc()


def test_missing_soundfile_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(ImportError, match=r'pip install "forecaster-rnn\[audio\]"'):
        load_audio_mfcc()


# --------------------------------------------------------------------------------------------
# list_datasets
# --------------------------------------------------------------------------------------------


def test_list_datasets_schema_and_sizes(stocks: pl.DataFrame, manifest: pl.DataFrame) -> None:
    catalogue = list_datasets()
    assert catalogue.schema == pl.Schema(
        {
            "name": pl.String,
            "description": pl.String,
            "license": pl.String,
            "rows": pl.Int64,
            "series": pl.Int64,
        }
    )
    assert catalogue.null_count().row(0) == (0,) * catalogue.width
    rows = {name: (n, s) for name, n, s in catalogue.select("name", "rows", "series").iter_rows()}
    audio_frames = manifest.select((1 + pl.col("n_samples") // 80).sum()).item()
    assert rows == {"stocks": (stocks.height, 5), "audio": (audio_frames, 20)}
    licenses = dict(catalogue.select("name", "license").iter_rows())
    assert "CC BY-SA 4.0" in licenses["audio"]
    assert "GPL" not in licenses["stocks"]
    descriptions = dict(catalogue.select("name", "description").iter_rows())
    assert "load_stocks()" in descriptions["stocks"]
    assert "load_audio_mfcc()" in descriptions["audio"]


def test_list_datasets_audio_rows_match_loader(fsdd_mfcc: pl.DataFrame) -> None:
    audio = list_datasets().filter(name="audio")
    assert audio["rows"].item() == fsdd_mfcc.height
    assert audio["series"].item() == fsdd_mfcc["clip"].n_unique()


def test_data_cards_exist() -> None:
    for card in ("README.md", "stocks/README.md", "audio/README.md"):
        assert (REPO_DATASETS / card).stat().st_size > 200, card
    stocks_card = (REPO_DATASETS / "stocks" / "README.md").read_text()
    for ticker, (rows, first, last) in EXPECTED_STOCKS.items():
        assert ticker in stocks_card
        assert str(rows) in stocks_card and first.isoformat() in stocks_card
        assert last.isoformat() in stocks_card
    # The full license texts the MIT / NCSA / Matplotlib licenses ask copies to carry.
    licenses = " ".join((REPO_DATASETS / "stocks" / "LICENSES.md").read_text().split())
    for notice in (
        "Copyright (c) 2017 Taylor G Smith",
        "Copyright (c) 2016 Christopher Schölzel",
        "Copyright (c) 2014 Kevin Sheppard. All rights reserved.",
        "Copyright (c) 2012- Matplotlib Development Team; All Rights Reserved",
    ):
        assert notice in licenses, notice
    for file in (REPO_DATASETS / "stocks").glob("*.csv.gz"):
        assert f"`{file.name}" in licenses, file.name


# --------------------------------------------------------------------------------------------
# hostile and broken audio files: a DataValidationError naming the file, never a soundfile or
# librosa error, and never a silently shortened or NaN clip
# --------------------------------------------------------------------------------------------


def _good_wav_bytes(tmp_path: Path, subtype: str = "PCM_16") -> bytes:
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    path = tmp_path / "source.wav"
    sf.write(str(path), _tone(4000, 8000), 8000, subtype=subtype)
    data = path.read_bytes()
    path.unlink()
    return data


def _riff_size(wav: bytes, size: int) -> bytes:
    """``wav`` with the RIFF header's size field set to ``size``."""
    return wav[:4] + size.to_bytes(4, "little") + wav[8:]


def test_a_wav_whose_riff_size_is_off_but_whose_samples_are_whole_is_read(tmp_path: Path) -> None:
    """Only the data chunk says whether samples are missing: a RIFF size 8 bytes too large
    (samples complete) was refused as truncated."""
    good = _good_wav_bytes(tmp_path)
    (tmp_path / "off.wav").write_bytes(_riff_size(good, len(good) - 8 + 8))
    assert load_audio_mfcc(tmp_path).height == 1 + 4000 // 80


CORRUPT_WAVS = {
    "zero-bytes": (lambda good: b"", r"Could not read audio file .*broken\.wav"),
    "text": (lambda good: b"this is not audio\n" * 10, r"Could not read audio file .*broken\.wav"),
    "riff-junk": (
        lambda good: b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(64)),
        r"Could not read audio file .*broken\.wav",
    ),
    "header-only": (lambda good: good[:44], r"broken\.wav is truncated: its data chunk declares"),
    "truncated-half": (
        lambda good: good[: len(good) // 2],
        r"broken\.wav is truncated: its data chunk declares 8,000 bytes of samples but the file "
        r"holds 3,978",
    ),
    # the data chunk cut short while the RIFF size says the file is whole, or is not known
    # (0xFFFFFFFF, as streaming writers leave it): half the clip was read without a word
    "riff-size-of-the-cut-file": (
        lambda good: _riff_size(good[: len(good) // 2], len(good) // 2 - 8),
        r"broken\.wav is truncated: its data chunk declares 8,000",
    ),
    "riff-size-unknown": (
        lambda good: _riff_size(good[: len(good) // 2], 0xFFFFFFFF),
        r"broken\.wav is truncated: its data chunk declares 8,000",
    ),
    "random-bytes": (
        lambda good: np.random.default_rng(0).bytes(3000),
        r"Could not read audio file .*broken\.wav",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPT_WAVS))
def test_hostile_corrupt_wav_files(tmp_path: Path, case: str) -> None:
    make, message = CORRUPT_WAVS[case]
    good = _good_wav_bytes(tmp_path)
    (tmp_path / "good.wav").write_bytes(good)
    (tmp_path / "broken.wav").write_bytes(make(good))
    with pytest.raises(DataValidationError, match=message) as info:
        load_audio_mfcc(tmp_path)
    assert "remove" in str(info.value) or "Re-copy" in str(info.value)
    assert load_audio_mfcc(tmp_path, pattern="good.wav").height == 1 + 4000 // 80


WAV_LAYOUTS = {  # soundfile's format and endianness: RIFF's cousins libsndfile reads
    "rf64": ("RF64", "FILE"),  # sizes in the ds64 chunk, the data chunk's 0xFFFFFFFF
    "w64": ("W64", "FILE"),  # GUIDs and 64-bit sizes
    "rifx": ("WAV", "BIG"),  # big-endian sizes
}


@pytest.mark.parametrize("layout", list(WAV_LAYOUTS))
def test_a_truncated_rf64_w64_or_rifx_wav_is_refused(tmp_path: Path, layout: str) -> None:
    """Only RIFF files were checked for a data chunk cut short: half an RF64, Wave64 or RIFX
    clip was read without a word."""
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    kind, endian = WAV_LAYOUTS[layout]
    whole = tmp_path / "whole.wav"
    sf.write(str(whole), _tone(4000, 8000), 8000, format=kind, subtype="PCM_16", endian=endian)
    assert sf.info(str(whole)).format == kind
    assert load_audio_mfcc(tmp_path).height == 1 + 4000 // 80  # a whole file is read
    good = whole.read_bytes()
    (tmp_path / "broken.wav").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataValidationError, match=r"broken\.wav is truncated: .* declares 8,000"):
        load_audio_mfcc(tmp_path)


@pytest.mark.parametrize("kind", ["AIFF", "AU"])
def test_a_truncated_aiff_or_au_clip_is_refused(tmp_path: Path, kind: str) -> None:
    """Half an AIFF or Sun ``.au`` clip was read without a word (only WAV layouts were checked)."""
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    suffix = kind.lower()
    whole = tmp_path / f"whole.{suffix}"
    sf.write(str(whole), _tone(4000, 8000), 8000, format=kind, subtype="PCM_16")
    assert load_audio_mfcc(tmp_path, pattern=f"*.{suffix}").height == 1 + 4000 // 80
    good = whole.read_bytes()
    (tmp_path / f"broken.{suffix}").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataValidationError, match=rf"broken\.{suffix} is truncated: .* 8,000"):
        load_audio_mfcc(tmp_path, pattern=f"*.{suffix}")


@pytest.mark.parametrize(
    ("kind", "marker", "width"),
    [("AIFF", b"SSND", 4), ("W64", bytes.fromhex("64617461f3acd3118cd100c04f8edb8a"), 8)],
)
def test_a_size_of_all_ones_is_not_known_not_truncated(
    tmp_path: Path, kind: str, marker: bytes, width: int
) -> None:
    """A streaming writer's all-ones size of the samples cannot be checked: it was read as a
    real size (less the chunk's own bytes) and the whole clip refused as truncated."""
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    path = tmp_path / "clip.wav"
    sf.write(str(path), _tone(4000, 8000), 8000, format=kind, subtype="PCM_16")
    data = path.read_bytes()
    at = data.index(marker) + len(marker)
    path.write_bytes(data[:at] + b"\xff" * width + data[at + width :])
    assert sf.info(str(path)).frames == 4000  # libsndfile reads it whole
    assert load_audio_mfcc(tmp_path).height == 1 + 4000 // 80


def test_an_rf64_wav_without_its_ds64_chunk_is_unreadable_not_truncated(tmp_path: Path) -> None:
    """An RF64 data chunk whose size is in no ds64 chunk has no known size: libsndfile's
    refusal is reported (the file cannot be read), not a truncation made up from 0xFFFFFFFF."""
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    path = tmp_path / "clip.wav"
    sf.write(str(path), _tone(4000, 8000), 8000, format="RF64", subtype="PCM_16")
    data = path.read_bytes()
    at = data.index(b"ds64")
    size = int.from_bytes(data[at + 4 : at + 8], "little")
    junk = b"JUNK" + data[at + 4 : at + 8] + bytes(size)  # the ds64 chunk blanked out
    path.write_bytes(data[:at] + junk + data[at + 8 + size :])
    with pytest.raises(DataValidationError, match=r"Could not read audio file .*clip\.wav"):
        load_audio_mfcc(tmp_path)


def test_hostile_wav_with_huge_float_samples(tmp_path: Path) -> None:
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    sf.write(str(tmp_path / "loud.wav"), 1e30 * _tone(4000, 8000), 8000, subtype="FLOAT")
    with pytest.raises(DataValidationError, match=r"loud\.wav are not finite.*reach 5\.\d+e\+29"):
        load_audio_mfcc(tmp_path)


def test_hostile_wav_with_nan_samples(tmp_path: Path) -> None:
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    signal = _tone(4000, 8000)
    signal[100] = np.nan
    sf.write(str(tmp_path / "nan.wav"), signal, 8000, subtype="FLOAT")
    with pytest.raises(DataValidationError, match=r"nan\.wav contains NaN or infinite samples"):
        load_audio_mfcc(tmp_path)


def test_hostile_clip_shorter_than_the_fft_window(tmp_path: Path) -> None:
    _write_wav(tmp_path / "click.wav", _tone(100, 8000), 8000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no librosa UserWarning leaks out, only ours
        with pytest.raises(ForecasterWarning, match=r"click\.wav has 100 samples, fewer than"):
            load_audio_mfcc(tmp_path)
    with pytest.warns(ForecasterWarning, match="mostly zero padding"):
        frame = load_audio_mfcc(tmp_path)
    assert frame.height == 1 + 100 // 80
    assert np.isfinite(frame.drop("clip", "frame").to_numpy()).all()


def test_clips_of_different_sample_rates_warn(tmp_path: Path) -> None:
    # was: silent, although a frame of 80 samples is 10 ms at 8 kHz and 5 ms at 16 kHz
    _write_wav(tmp_path / "a.wav", _tone(8000, 8000), 8000)
    _write_wav(tmp_path / "b.wav", _tone(16000, 16000), 16000)
    with pytest.warns(ForecasterWarning, match="different sample rates") as record:
        load_audio_mfcc(tmp_path)
    message = str(record[0].message)
    assert "8,000 Hz: a; 16,000 Hz: b" in message and "sample_rate=8000" in message
    assert record[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resampled = load_audio_mfcc(tmp_path, sample_rate=8000)
    assert resampled.group_by("clip").len().sort("clip")["len"].to_list() == [101, 101]


@pytest.mark.parametrize("n_fft", [255, 256, 257])
def test_frames_per_clip_follow_librosa_padding(tmp_path: Path, n_fft: int) -> None:
    # was documented (and estimated) as 1 + n // hop_length, wrong for an odd n_fft
    from forecaster.data.audio import frame_count

    _write_wav(tmp_path / "a.wav", _tone(8000, 8000), 8000)
    expected = 1 + (8000 + 2 * (n_fft // 2) - n_fft) // 80
    assert load_audio_mfcc(tmp_path, n_fft=n_fft).height == frame_count(8000, n_fft, 80)
    assert frame_count(8000, n_fft, 80) == expected == (100 if n_fft % 2 else 101)
    assert "1 + (n - 1) // hop_length`` for an odd" in (load_audio_mfcc.__doc__ or "")
