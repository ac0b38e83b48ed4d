"""Loaders for the small real data sets bundled with the package.

The data files ship inside the package, in ``forecaster/datasets/data/`` (package data, so a
wheel carries them too), each set with a data card (``README.md``) that gives its origin,
license and quirks. They are read with :mod:`importlib.resources`; nothing is imported from
there.

Set the environment variable ``FORECASTER_DATASETS_DIR`` to read another folder with the same
layout (``stocks/`` and ``audio/`` inside) instead, for example a corrected copy of the data.

Public functions
----------------
- :func:`load_stocks`: daily OHLCV prices of five US stocks and indices, as one long frame.
- :func:`stock_tickers`: the bundled tickers a list names (checked).
- :func:`load_audio_mfcc`: MFCC frames of spoken-digit clips (or of any folder of WAV files).
- :func:`list_datasets`: what is bundled, with licenses and sizes.
- :func:`datasets_dir`: where the bundled data is read from.

Examples
--------
>>> from forecaster import datasets
>>> datasets.list_datasets().get_column("name").to_list()
['stocks', 'audio']
>>> datasets.load_stocks(["MSFT"]).columns
['ticker', 'date', 'open', 'high', 'low', 'close', 'volume']
"""

from __future__ import annotations

__all__ = [
    "DATASETS_DIR_ENV",
    "STOCK_TICKERS",
    "datasets_dir",
    "list_datasets",
    "load_audio_mfcc",
    "load_stocks",
    "stock_tickers",
]

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import polars as pl

from forecaster._polars import collect
from forecaster._validation import describe_value
from forecaster._version import DISTRIBUTION, REINSTALL
from forecaster.data.audio import (
    audio_files,
    frame_count,
    import_audio_backend,
    mfcc_frames,
    mfcc_settings,
)
from forecaster.exceptions import DataValidationError

DATASETS_DIR_ENV = "FORECASTER_DATASETS_DIR"
"""Name of the environment variable that overrides the location of the bundled data folder."""

_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class _StockFile:
    file: str
    description: str
    license: str


# Ticker -> bundled file. Keep in sync with data/stocks/README.md (the data card).
_STOCKS: dict[str, _StockFile] = {
    "GOOG": _StockFile(
        "goog_daily_2004_2008_matplotlib.csv.gz",
        "Google Inc. common stock, daily, 2004-08-19 to 2008-10-14 (Yahoo via matplotlib)",
        "Matplotlib license (PSF-style); Yahoo terms",
    ),
    "IXIC": _StockFile(
        "nasdaq_composite_daily_1999_2018_arch.csv.gz",
        "NASDAQ Composite index (^IXIC), daily, 1999-01-04 to 2018-12-31 (Yahoo via arch)",
        "NCSA; Yahoo terms",
    ),
    "MSFT": _StockFile(
        "msft_daily_1986_2017_pmdarima.csv.gz",
        "Microsoft common stock, daily, split-adjusted, 1986-03-13 to 2017-11-10 (pmdarima)",
        "MIT",
    ),
    "NDX": _StockFile(
        "ndx_nasdaq100_daily_1990_2001_nolds.csv.gz",
        "NASDAQ-100 index (^NDX), daily, 1990-01-02 to 2001-04-30 (Yahoo via nolds)",
        "MIT; Yahoo terms",
    ),
    "SPX": _StockFile(
        "sp500_index_daily_1999_2018_arch.csv.gz",
        "S&P 500 index (^GSPC), daily, 1999-01-04 to 2018-12-31 (Yahoo via arch)",
        "NCSA; Yahoo terms",
    ),
}

STOCK_TICKERS: tuple[str, ...] = tuple(sorted(_STOCKS))
"""Tickers accepted by :func:`load_stocks`, in the order the loaded frame is sorted."""


# --------------------------------------------------------------------------------------------
# Locating the data
# --------------------------------------------------------------------------------------------


def _override_dir() -> Path | None:
    """The folder named by ``$FORECASTER_DATASETS_DIR`` (None when unset or empty)."""
    override = os.environ.get(DATASETS_DIR_ENV, "").strip()
    if not override:
        return None
    folder = Path(override).expanduser()
    if not folder.is_dir():
        raise DataValidationError(
            f"{DATASETS_DIR_ENV}={override!r} is not an existing folder. Expected the path of a "
            "folder laid out like the package's bundled data (with stocks/ and audio/ inside); "
            f"fix the path or unset the variable (`unset {DATASETS_DIR_ENV}`) to use the data "
            "shipped with forecaster."
        )
    return folder


def _package_data() -> Traversable:
    """The ``data`` folder inside this package, as :mod:`importlib.resources` sees it."""
    return resources.files(__name__).joinpath("data")


def _data_root() -> Traversable:
    """The override folder, or else the package's own data, checked to exist."""
    override = _override_dir()
    if override is not None:
        return override
    root = _package_data()
    if not root.is_dir():
        raise DataValidationError(
            f"The data bundled with forecaster was not found at {root}: this installation of "
            "the package lacks its data files (a build that dropped the package data?). "
            f"Reinstall forecaster from its wheel or a clone ({REINSTALL}; {DISTRIBUTION} is "
            "not on the package index), or point it at a copy with "
            f"`export {DATASETS_DIR_ENV}=/path/to/data` (a folder with stocks/ and audio/ inside, "
            "e.g. forecaster/datasets/data in a clone of the repository)."
        )
    return root


def datasets_dir() -> Path:
    """Return the folder that holds the bundled data sets.

    The folder is ``$FORECASTER_DATASETS_DIR`` when that environment variable is set (and not
    empty), otherwise the ``data`` folder inside the installed ``forecaster.datasets`` package
    (found with :func:`importlib.resources.files`).

    Returns
    -------
    pathlib.Path
        An existing folder, expected to contain ``stocks/`` and ``audio/``, each with its data
        card ``README.md``.

    Raises
    ------
    DataValidationError
        If the variable points to something that is not a folder, if the package's data folder
        is missing, or if the package is imported from an archive (a zip file) so that its
        data has no folder on disk. The message says how to set ``FORECASTER_DATASETS_DIR``.

    Examples
    --------
    >>> from forecaster.datasets import datasets_dir
    >>> sorted(p.name for p in datasets_dir().iterdir() if p.is_dir())
    ['audio', 'stocks']
    """
    root = _data_root()
    if isinstance(root, Path):
        return root
    raise DataValidationError(
        f"The data bundled with forecaster is inside an archive ({root}), not in a folder on "
        "disk, so it has no path. The loaders still read it; for a path, extract "
        f"forecaster/datasets/data somewhere and `export {DATASETS_DIR_ENV}=/that/folder`."
    )


@contextmanager
def _bundled_path(*parts: str) -> Iterator[Path]:
    """A real path to a bundled file or folder, for the time of the ``with`` block.

    The file or folder itself when the data lives in a folder on disk (the usual case);
    otherwise (the package imported from an archive) a temporary copy: of a file through
    :func:`importlib.resources.as_file`, of a folder file by file (``as_file`` extracts a
    folder only from Python 3.12 on).
    """
    resource = _data_root().joinpath(*parts)
    if not (resource.is_file() or resource.is_dir()):
        raise DataValidationError(
            f"Bundled data file {resource} does not exist. Expected the layout of the package's "
            f"data folder (stocks/, audio/); check ${DATASETS_DIR_ENV} if it is set, or "
            f"reinstall forecaster from its wheel or a clone ({REINSTALL}) or restore the file "
            "from git in a clone."
        )
    if isinstance(resource, Path) or resource.is_file():
        with resources.as_file(resource) as path:
            yield path
        return
    with tempfile.TemporaryDirectory(prefix="forecaster-data-") as temporary:
        copy = Path(temporary, resource.name)
        _copy_folder(resource, copy)
        yield copy


def _copy_folder(folder: Traversable, target: Path) -> None:
    """Copy the Traversable ``folder`` (inside an archive) to the new folder ``target``."""
    target.mkdir()
    for entry in folder.iterdir():
        if entry.is_dir():
            _copy_folder(entry, target / entry.name)
        else:
            (target / entry.name).write_bytes(entry.read_bytes())


# --------------------------------------------------------------------------------------------
# Stocks
# --------------------------------------------------------------------------------------------


def stock_tickers(tickers: Sequence[str] | None, *, each_once: bool = False) -> list[str]:
    """The bundled tickers that ``tickers`` names (matched ignoring case and surrounding
    spaces), sorted; None: every one (:data:`STOCK_TICKERS`).

    Parameters
    ----------
    tickers : str, list of str or None
        One ticker or several.
    each_once : bool, default False
        Refuse a ticker named twice (by default it is read once).

    Returns
    -------
    list of str

    Raises
    ------
    DataValidationError
        For no ticker, one that is not text or not bundled, and (``each_once``) one named
        twice; naming the available tickers.
    """
    if tickers is None:
        return list(STOCK_TICKERS)
    if isinstance(tickers, str):
        tickers = [tickers]
    elif isinstance(tickers, bytes | bytearray) or not isinstance(
        tickers, Sequence | set | frozenset
    ):
        fix = (
            f"Decode it first, e.g. tickers={bytes(tickers).decode(errors='replace')!r}."
            if isinstance(tickers, bytes | bytearray)
            else "Pass a ticker or a list of them, e.g. tickers=['MSFT']."
        )
        raise DataValidationError(
            f"tickers must be a ticker (text), a list of tickers or None, got "
            f"{describe_value(tickers)}. {fix} Available tickers: {', '.join(STOCK_TICKERS)}."
        )
    requested: list[str] = []
    for ticker in tickers:
        if not isinstance(ticker, str):
            raise DataValidationError(
                f"tickers must be strings; received {describe_value(ticker)} in "
                f"{describe_value(tickers)}. Available tickers: {', '.join(STOCK_TICKERS)}."
            )
        name = ticker.strip().upper()
        if name not in requested:
            requested.append(name)
        elif each_once:
            raise DataValidationError(
                f"Ticker {name!r} is listed more than once (again as {ticker!r}; tickers are "
                "matched ignoring case and surrounding spaces). List each ticker once."
            )
    if not requested:
        raise DataValidationError(
            "tickers is empty; pass None for all tickers or a list of some of: "
            f"{', '.join(STOCK_TICKERS)}."
        )
    unknown = [t for t in requested if t not in _STOCKS]
    if unknown:
        raise DataValidationError(
            f"Unknown ticker(s) {unknown}. Available tickers: {', '.join(STOCK_TICKERS)}."
        )
    return sorted(requested)


def _read_stock_file(ticker: str) -> pl.DataFrame:
    with _bundled_path("stocks", _STOCKS[ticker].file) as path:
        try:
            raw = pl.read_csv(
                path,
                schema_overrides={"date": pl.Date, **dict.fromkeys(_PRICE_COLUMNS, pl.Float64)},
                null_values=["null", "NaN"],
                glob=False,
            )
        except pl.exceptions.PolarsError as err:
            raise DataValidationError(f"Could not read stock file {path}: {err}") from err
    missing = [c for c in ("date", *_PRICE_COLUMNS) if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"Stock file {path} lacks column(s) {missing}; expected date, "
            f"{', '.join(_PRICE_COLUMNS)}; found {raw.columns}."
        )
    return raw.select(
        pl.lit(ticker, dtype=pl.String).alias("ticker"),
        pl.col("date"),
        *(pl.col(c) for c in _PRICE_COLUMNS),
    )


def load_stocks(tickers: Sequence[str] | None = None) -> pl.DataFrame:
    """Load bundled daily stock and index prices as one long frame.

    Five real series of trading-day prices (no weekends or market holidays, so dates are not
    evenly spaced in calendar days):

    ======  ==========================================  ========================
    ticker  series                                      span
    ======  ==========================================  ========================
    GOOG    Google Inc. common stock                    2004-08-19 .. 2008-10-14
    IXIC    NASDAQ Composite index                      1999-01-04 .. 2018-12-31
    MSFT    Microsoft common stock (split-adjusted)     1986-03-13 .. 2017-11-10
    NDX     NASDAQ-100 index                            1990-01-02 .. 2001-04-30
    SPX     S&P 500 index                               1999-01-04 .. 2018-12-31
    ======  ==========================================  ========================

    Origins, licenses and quirks (e.g. a few rows with zero volume) are in
    ``forecaster/datasets/data/stocks/README.md`` (``forecaster datasets stocks`` prints where
    it is installed). The bundled files have no missing values.

    Parameters
    ----------
    tickers : sequence of str or None, default None
        Tickers to load (case-insensitive; a single string is accepted too). ``None`` loads all
        of :data:`STOCK_TICKERS`.

    Returns
    -------
    polars.DataFrame
        Columns ``ticker`` (String), ``date`` (Date), ``open``, ``high``, ``low``, ``close``
        (Float64, in USD for stocks and index points for indices) and ``volume`` (Float64,
        shares traded), sorted by ``(ticker, date)``. Extra upstream columns (``openint``,
        ``adj_close``) are dropped.

    Raises
    ------
    DataValidationError
        If a ticker is unknown (the message lists the available ones), ``tickers`` is empty, or
        a bundled file is missing or unreadable.

    Examples
    --------
    >>> from forecaster.datasets import load_stocks
    >>> prices = load_stocks(["SPX", "IXIC"])
    >>> prices.group_by("ticker").len().sort("ticker").rows()
    [('IXIC', 5031), ('SPX', 5031)]
    >>> prices.schema["date"], prices.schema["close"]
    (Date, Float64)
    """
    wanted = stock_tickers(tickers)
    frames = [_read_stock_file(t) for t in wanted]
    return pl.concat(frames, how="vertical").sort(["ticker", "date"])


# --------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------


_HOP_LENGTH, _N_FFT = 80, 256
"""The default frame step and window of :func:`load_audio_mfcc` (also its row count in
:func:`list_datasets`)."""


def load_audio_mfcc(
    path: str | Path | None = None,
    *,
    n_mfcc: int = 13,
    sample_rate: int | None = None,
    hop_length: int = _HOP_LENGTH,
    n_fft: int = _N_FFT,
    n_mels: int = 40,
    pattern: str = "*.wav",
) -> pl.DataFrame:
    """Compute MFCC frames of every audio clip in a folder, as one long frame.

    Each clip (file) is one multivariate series: ``librosa.feature.mfcc`` turns its samples into
    a matrix of shape ``[sr / hop_length * duration, n_mfcc]`` (time steps x features). Exactly,
    librosa centres the frames by padding ``n_fft // 2`` samples at each end, so a clip of ``n``
    samples gives ``1 + (n + 2 * (n_fft // 2) - n_fft) // hop_length`` frames: ``1 + n //
    hop_length`` for an even ``n_fft`` (the default), ``1 + (n - 1) // hop_length`` for an odd
    one. Clips of different lengths give different numbers of frames (variable-length
    sequences).
    The defaults suit the bundled 8 kHz clips: a 32 ms window (``n_fft=256``) every 10 ms
    (``hop_length=80``), 40 mel bands and 13 coefficients.

    By default the 20 bundled Free Spoken Digit Dataset clips are used (speakers jackson and
    theo, digits 0-9, take 0; CC BY-SA 4.0, see the data card
    ``forecaster/datasets/data/audio/README.md``): 871 frames in all, 24 to 83 per clip.

    Needs the optional ``audio`` extra (librosa and soundfile).

    Parameters
    ----------
    path : str, pathlib.Path or None, default None
        Folder with the audio files. ``None`` uses the bundled clips
        (``forecaster/datasets/data/audio/fsdd``).
    n_mfcc : int, default 13
        Number of coefficients per frame; 1 <= ``n_mfcc`` <= ``n_mels``.
    sample_rate : int or None, default None
        Resample every clip to this rate (Hz, at most 1,000,000) before computing the
        features. ``None`` keeps each file's native rate; clips of different native rates then
        get a ``ForecasterWarning`` (a frame of ``hop_length`` samples spans a different time
        in each, and the mel bands different frequencies), which names the rates.
    hop_length : int, default 80
        Samples between successive frames (80 samples = 10 ms at 8 kHz), at most 65,536.
    n_fft : int, default 256
        FFT window length in samples, at most 65,536.
    n_mels : int, default 40
        Number of mel bands, at most 1,024.
    pattern : str, default "*.wav"
        Glob pattern, relative to ``path``, selecting the files (``"**/*.wav"`` recurses).
        Multi-channel files are averaged to mono.

    Returns
    -------
    polars.DataFrame
        Columns ``clip`` (String, the file name without extension), ``frame`` (Int64, 0-based
        frame index within the clip; frame ``k`` is centred at sample ``k * hop_length``) and
        ``mfcc_0`` .. ``mfcc_{n_mfcc-1}`` (Float32), sorted by ``(clip, frame)``.

    Warns
    -----
    ForecasterWarning
        If a clip is shorter than ``n_fft`` (its frames are mostly padding), or, with
        ``sample_rate=None``, clips have different native sample rates.

    Raises
    ------
    ImportError
        If librosa or soundfile is not installed (the message says
        ``pip install "forecaster-rnn[audio]"``).
    DataValidationError
        If a parameter is out of range, the folder does not exist, no file matches ``pattern``,
        two matching files share a name stem, or a file cannot be decoded (the message names
        the file).

    Notes
    -----
    Sizes beyond the limits above are refused, and so is a clip whose features (frames x
    frequency bins, from its length, ``n_fft`` and ``hop_length``) would not fit in memory,
    before anything is computed.

    Examples
    --------
    >>> from forecaster.datasets import load_audio_mfcc
    >>> mfcc = load_audio_mfcc()
    >>> mfcc.shape
    (871, 15)
    >>> mfcc.filter(clip="0_jackson_0").height  # 5148 samples: 1 + 5148 // 80
    65
    >>> load_audio_mfcc(n_mfcc=20).columns[-1]
    'mfcc_19'
    """
    settings = mfcc_settings(
        n_mfcc=n_mfcc,
        sample_rate=sample_rate,
        hop_length=hop_length,
        n_fft=n_fft,
        n_mels=n_mels,
        pattern=pattern,
    )
    import_audio_backend()  # before the folder is looked at: the missing extra comes first
    if path is not None:
        return mfcc_frames(audio_files(Path(path).expanduser(), pattern), settings)
    with _bundled_path("audio", "fsdd") as folder:
        return mfcc_frames(audio_files(folder, pattern), settings)


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------


def list_datasets() -> pl.DataFrame:
    """List the bundled data sets.

    The sizes are measured from the files each time (no librosa needed).

    Returns
    -------
    polars.DataFrame
        One row per data set with columns ``name`` (String; ``"stocks"`` or ``"audio"``),
        ``description`` (String, including the loader to call), ``license`` (String),
        ``rows`` (Int64, rows the loader returns with its default arguments; for audio, MFCC
        frames at the default ``hop_length=80``, computed from the manifest's sample counts)
        and ``series`` (Int64, tickers or clips).

    Raises
    ------
    DataValidationError
        If the data folder or one of its files is missing.

    Examples
    --------
    >>> from forecaster.datasets import list_datasets
    >>> list_datasets().select("name", "rows", "series").rows()
    [('stocks', 21954, 5), ('audio', 871, 20)]
    """
    stock_rows = 0
    for ticker in STOCK_TICKERS:
        with _bundled_path("stocks", _STOCKS[ticker].file) as path:
            stock_rows += collect(pl.scan_csv(path, glob=False).select(pl.len())).item()
    with _bundled_path("audio", "fsdd_manifest.csv") as path:
        manifest = pl.read_csv(path)
    audio_rows = manifest.select(frame_count(pl.col("n_samples"), _N_FFT, _HOP_LENGTH).sum()).item()
    return pl.DataFrame(
        {
            "name": ["stocks", "audio"],
            "description": [
                "Daily OHLCV prices of MSFT, GOOG and the S&P 500 (SPX), NASDAQ Composite (IXIC) "
                "and NASDAQ-100 (NDX) indices, 1986-2018; load_stocks()",
                "Free Spoken Digit Dataset clips (8 kHz mono WAV; speakers jackson and theo, "
                "digits 0-9, take 0) as MFCC frames; load_audio_mfcc()",
            ],
            "license": [
                "MIT, NCSA or Matplotlib license per file; Yahoo Finance terms for the "
                "Yahoo-derived prices (see the data card: forecaster datasets stocks)",
                "CC BY-SA 4.0 (Free Spoken Digit Dataset, Z. Jackson et al.)",
            ],
            "rows": [stock_rows, audio_rows],
            "series": [len(STOCK_TICKERS), manifest.height],
        },
        schema={
            "name": pl.String,
            "description": pl.String,
            "license": pl.String,
            "rows": pl.Int64,
            "series": pl.Int64,
        },
    )
