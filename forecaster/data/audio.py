"""Audio clips as MFCC frames: reading WAV (libsndfile) files safely and computing their
features with librosa, the steps of :func:`forecaster.datasets.load_audio_mfcc`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl

from forecaster._validation import check, check_allocation
from forecaster.exceptions import DataValidationError, ForecasterWarning

__all__ = [
    "AUDIO_INSTALL_HINT",
    "MfccSettings",
    "audio_files",
    "clip_mfcc",
    "clip_signal",
    "import_audio_backend",
    "mfcc_settings",
]

AUDIO_INSTALL_HINT = 'pip install "forecaster[audio]"'
"""How to install the optional audio dependencies."""


def import_audio_backend() -> tuple[ModuleType, ModuleType]:
    """Import librosa and soundfile, or explain how to install them."""
    try:
        import librosa
        import soundfile
    except ImportError as err:
        raise ImportError(
            "load_audio_mfcc needs the optional audio dependencies (librosa and soundfile), "
            f"which are not installed: {err}. Install them with `{AUDIO_INSTALL_HINT}`."
        ) from err
    return librosa, soundfile


def _check_riff_length(path: Path) -> None:
    """Refuse a RIFF (WAV) file shorter than its header says: libsndfile would read the part
    that is there without a word, and the clip would silently lose its end."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
        size = path.stat().st_size
    except OSError as err:
        raise DataValidationError(f"Could not read audio file {path}: {err}.") from err
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    declared = int.from_bytes(head[4:8], "little") + 8
    if declared not in (8, 0xFFFFFFFF + 8) and size < declared:  # 0 / -1: length not known
        raise DataValidationError(
            f"Audio file {path} is truncated: its header declares {declared:,} bytes but the "
            f"file has {size:,}. Re-copy or re-export it, or remove it (or narrow `pattern`)."
        )


def _read_clip(path: Path, soundfile: ModuleType) -> tuple[np.ndarray, int]:
    _check_riff_length(path)
    try:
        data, native_sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as err:
        raise DataValidationError(
            f"Could not read audio file {path}: {err}. Expected a readable WAV (or other "
            "libsndfile) file; remove or replace it, or narrow `pattern`."
        ) from err
    if data.shape[0] == 0:
        raise DataValidationError(
            f"Audio file {path} has no samples; remove it or narrow `pattern`."
        )
    signal = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(signal)):
        raise DataValidationError(f"Audio file {path} contains NaN or infinite samples.")
    return np.ascontiguousarray(signal, dtype=np.float32), int(native_sr)


@dataclass(frozen=True)
class MfccSettings:
    """The checked MFCC parameters of :func:`forecaster.datasets.load_audio_mfcc`."""

    n_mfcc: int
    sample_rate: int | None
    hop_length: int
    n_fft: int
    n_mels: int


def mfcc_settings(
    *,
    n_mfcc: int,
    sample_rate: int | None,
    hop_length: int,
    n_fft: int,
    n_mels: int,
    pattern: str,
) -> MfccSettings:
    """Check the parameters of :func:`~forecaster.datasets.load_audio_mfcc` (the parameter
    table, then how they relate) before anything is read."""
    n_mfcc = check("n_mfcc", n_mfcc)
    hop_length = check("hop_length", hop_length)
    n_fft = check("n_fft", n_fft)
    n_mels = check("n_mels", n_mels)
    if n_mfcc > n_mels:
        raise DataValidationError(
            f"n_mfcc must be <= n_mels (the coefficients are a DCT of the mel bands); received "
            f"n_mfcc={n_mfcc} and n_mels={n_mels}. Lower n_mfcc or raise n_mels."
        )
    if sample_rate is not None:
        sample_rate = check("sample_rate", sample_rate)
    if not isinstance(pattern, str) or not pattern:
        raise DataValidationError(
            f"pattern must be a non-empty glob string such as '*.wav'; received {pattern!r}."
        )
    return MfccSettings(n_mfcc, sample_rate, hop_length, n_fft, n_mels)


def audio_files(folder: Path, pattern: str) -> list[Path]:
    """The files of ``folder`` matching ``pattern``, sorted by name stem; refuses a missing
    folder, no match and two files with one stem."""
    if not folder.is_dir():
        raise DataValidationError(
            f"Audio folder {folder} does not exist or is not a folder. Expected a folder of "
            "audio files (e.g. WAV); pass an existing folder as `path`, or None for the bundled "
            "clips."
        )
    try:
        files = sorted((p for p in folder.glob(pattern) if p.is_file()), key=lambda p: p.stem)
    except (ValueError, NotImplementedError) as err:
        raise DataValidationError(
            f"pattern={pattern!r} is not a valid relative glob pattern: {err}"
        ) from err
    if not files:
        raise DataValidationError(
            f"No audio files match pattern {pattern!r} in {folder}. Expected at least one file, "
            "e.g. *.wav; check the folder or the pattern."
        )
    stems = [p.stem for p in files]
    duplicated = sorted({s for s in stems if stems.count(s) > 1})
    if duplicated:
        raise DataValidationError(
            f"Several files matching {pattern!r} in {folder} share the clip name(s) {duplicated}; "
            "clip names (file stems) must be unique. Narrow `pattern` or rename the files."
        )
    return files


def clip_signal(
    file: Path, settings: MfccSettings, librosa: ModuleType, soundfile: ModuleType
) -> tuple[np.ndarray, int]:
    """The mono samples of ``file`` (resampled to ``settings.sample_rate`` when given) and
    their rate; refuses features that would not fit in memory, before computing them."""
    signal, native_sr = _read_clip(file, soundfile)
    sr = native_sr
    sample_rate = settings.sample_rate
    if sample_rate is not None and sample_rate != native_sr:
        _check_feature_memory(file, 24 * (len(signal) * sample_rate // native_sr + 1), "Resampling")
        signal = librosa.resample(signal, orig_sr=native_sr, target_sr=sample_rate)
        sr = sample_rate
    n_fft, hop_length, n_mels = settings.n_fft, settings.hop_length, settings.n_mels
    bins, n_frames = n_fft // 2 + 1, 1 + signal.shape[0] // hop_length
    # the padded signal, the complex spectrogram, its power, the mel basis and bands
    needed = 8 * (len(signal) + n_fft) + 16 * bins * n_frames + 8 * n_mels * (bins + n_frames)
    _check_feature_memory(
        file,
        needed,
        f"The MFCCs (n_fft={n_fft:,}, hop_length={hop_length:,}, n_mels={n_mels:,})",
    )
    return signal, sr


def clip_mfcc(
    file: Path, signal: np.ndarray, sr: int, settings: MfccSettings, librosa: ModuleType
) -> pl.DataFrame:
    """The MFCC frames of one clip as rows ``(clip, frame, mfcc_0, ...)``."""
    n_fft, n_mfcc = settings.n_fft, settings.n_mfcc
    if signal.shape[0] < n_fft:
        warnings.warn(
            f"Audio file {file} has {signal.shape[0]} samples, fewer than n_fft={n_fft}: "
            "its MFCC frames are mostly zero padding. Use a smaller n_fft or drop the clip.",
            ForecasterWarning,
            stacklevel=3,
        )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large")  # said above
        coeffs = librosa.feature.mfcc(
            y=signal,
            sr=sr,
            n_mfcc=n_mfcc,
            hop_length=settings.hop_length,
            n_fft=n_fft,
            n_mels=settings.n_mels,
        )
    if not np.all(np.isfinite(coeffs)) or np.abs(coeffs).max() > np.finfo(np.float32).max:
        raise DataValidationError(
            f"The MFCCs of audio file {file} are not finite float32 numbers: its samples "
            f"reach {float(np.abs(signal).max()):.3g} (expected audio samples in [-1, 1]). "
            "Rescale or re-export the file, or remove it."
        )
    coeffs = np.asarray(coeffs, dtype=np.float32).T  # [n_frames, n_mfcc]
    n_frames = coeffs.shape[0]
    return pl.DataFrame(
        {
            "clip": pl.Series("clip", [file.stem] * n_frames, dtype=pl.String),
            "frame": pl.Series("frame", np.arange(n_frames, dtype=np.int64)),
            **{
                f"mfcc_{i}": pl.Series(f"mfcc_{i}", coeffs[:, i], dtype=pl.Float32)
                for i in range(n_mfcc)
            },
        }
    )


def _check_feature_memory(file: Path, n_bytes: int, what: str) -> None:
    """Refuse audio features of ``file`` that would not fit in memory, before computing."""
    check_allocation(
        n_bytes,
        what=f"{what} of audio file {file.name}",
        grows_with="the clip's length and n_fft / hop_length (frames x frequency bins), "
        "n_mels and sample_rate",
        fix="Use a smaller n_fft or sample_rate, a larger hop_length, or shorter clips.",
    )
