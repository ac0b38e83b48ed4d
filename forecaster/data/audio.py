"""Audio clips as MFCC frames: reading WAV (libsndfile) files safely and computing their
features with librosa, the steps of :func:`forecaster.datasets.load_audio_mfcc` and of a
pipeline's ``format = "wav"`` source (:func:`mfcc_frames`, whichever way the files were
chosen: a folder and a ``pattern``, or ``source.path``)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import polars as pl

from forecaster._validation import check, check_allocation
from forecaster._warnings import catching_warnings
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    MissingExtraError,
    warn_at_caller,
)

__all__ = [
    "AUDIO_INSTALL_HINT",
    "MfccSettings",
    "audio_files",
    "clip_mfcc",
    "clip_signal",
    "frame_count",
    "import_audio_backend",
    "mfcc_frames",
    "mfcc_settings",
]

AUDIO_INSTALL_HINT = 'pip install "forecaster-rnn[audio]"'
"""How to install the optional audio dependencies."""


def import_audio_backend() -> tuple[ModuleType, ModuleType]:
    """Import librosa and soundfile, or explain how to install them."""
    try:
        import librosa
        import soundfile
    except ImportError as err:
        raise MissingExtraError(
            "Audio features (load_audio_mfcc, a pipeline's audio source) need the optional "
            f"audio dependencies (librosa and soundfile), which are not installed: {err}. "
            f"Install them with `{AUDIO_INSTALL_HINT}`."
        ) from err
    return librosa, soundfile


def _check_wav_length(path: Path, chosen_by: str) -> None:
    """Refuse an audio file whose samples are fewer than its header says: libsndfile would
    read the part that is there without a word, and the clip would silently lose its end.
    RIFF and RIFX (big-endian) WAVE, RF64 and BW64 (the real size in their ``ds64`` chunk),
    Sony Wave64, AIFF / AIFF-C and Sun / NeXT ``.au`` files are checked
    (:func:`_data_chunk`). Only the chunk of samples counts
    (a RIFF size that is off, or a missing pad byte after complete samples, loses nothing); a
    size of 0 or all ones (not known, as streaming writers leave it) cannot be checked."""
    try:
        found = _data_chunk(path)
        size = path.stat().st_size
    except OSError as err:
        raise DataValidationError(f"Could not read audio file {path}: {err}.") from err
    if found is None:
        return
    start, declared = found
    if declared not in (0, 0xFFFFFFFF, 2**64 - 1) and size - start < declared:
        raise DataValidationError(
            f"Audio file {path} is truncated: its data chunk declares {declared:,} bytes of "
            f"samples but the file holds {max(size - start, 0):,}. Re-copy or re-export it, or "
            f"remove it (or narrow {chosen_by})."
        )


_W64_GUIDS = {
    name: bytes.fromhex(guid)
    for name, guid in (
        ("riff", "726966662e91cf11a5d628db04c10000"),
        ("wave", "77617665f3acd3118cd100c04f8edb8a"),
        ("data", "64617461f3acd3118cd100c04f8edb8a"),
    )
}
"""The GUIDs of Sony Wave64 (W64) that :func:`_data_chunk` reads: the file's header, its form
type and the chunk of samples."""


def _data_chunk(path: Path, max_chunks: int = 1024) -> tuple[int, int] | None:
    """Where the samples of an audio file start and the size its header declares for them
    (None: another format, or no chunk of samples within the file). RIFF (little-endian
    sizes), RIFX (big-endian), RF64 / BW64 (a ``data`` size of 0xFFFFFFFF stands for the
    64-bit one of the ``ds64`` chunk), Wave64 (GUIDs, 64-bit sizes that count the chunk's
    header), AIFF / AIFF-C (:func:`_aiff_data`) and Sun / NeXT ``.au`` (offset and size in
    the header; a size of all ones is not known)."""
    with open(path, "rb") as handle:
        head = handle.read(12)
        if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:] == b"WAVE":
            return _riff_data(handle, head[:4], max_chunks)
        if head[:4] == b"FORM" and head[8:] in (b"AIFF", b"AIFC"):
            return _aiff_data(handle, max_chunks)
        if head[:4] == b".snd":  # Sun / NeXT: the data's offset and size in the header
            start, size = int.from_bytes(head[4:8], "big"), int.from_bytes(head[8:12], "big")
            return start, size
        head += handle.read(28)
        if head[:16] == _W64_GUIDS["riff"] and head[24:40] == _W64_GUIDS["wave"]:
            return _w64_data(handle, max_chunks)
    return None


def _aiff_data(handle: Any, max_chunks: int) -> tuple[int, int] | None:
    """:func:`_data_chunk` of an AIFF / AIFF-C file after its 12-byte header: big-endian
    chunks padded to an even size; the samples are the ``SSND`` chunk's, after its 8 bytes of
    offset and block size."""
    for _ in range(max_chunks):
        header = handle.read(8)
        if len(header) < 8:
            return None
        size = int.from_bytes(header[4:], "big")
        if header[:4] == b"SSND":  # all ones: not known (kept, so it is not checked)
            return handle.tell() + 8, size if size == 0xFFFFFFFF else max(size - 8, 0)
        handle.seek(size + (size & 1), 1)
    return None


def _riff_data(handle: Any, form: bytes, max_chunks: int) -> tuple[int, int] | None:
    """:func:`_data_chunk` of a RIFF-like file after its 12-byte header (``form``: its tag)."""
    order: Any = "big" if form == b"RIFX" else "little"
    sized_apart = form in (b"RF64", b"BW64")
    wide = None  # the data size of an RF64 / BW64 file's ds64 chunk
    for _ in range(max_chunks):
        header = handle.read(8)
        if len(header) < 8:
            return None
        size = int.from_bytes(header[4:], order)
        if header[:4] == b"data":
            if sized_apart and size == 0xFFFFFFFF:
                size = 0 if wide is None else wide  # no ds64: not known
            return handle.tell(), size
        if header[:4] == b"ds64" and sized_apart and size >= 16:
            sizes = handle.read(16)  # of the RIFF form, then of the data
            if len(sizes) < 16:
                return None
            wide = int.from_bytes(sizes[8:], "little")
            size -= 16
        handle.seek(size + (size & 1), 1)  # chunks are padded to an even size
    return None


def _w64_data(handle: Any, max_chunks: int) -> tuple[int, int] | None:
    """:func:`_data_chunk` of a Wave64 file after its 40-byte header: chunks of a 16-byte
    GUID and a 64-bit size counting those 24 bytes, each padded to a multiple of 8."""
    for _ in range(max_chunks):
        header = handle.read(24)
        if len(header) < 24:
            return None
        size = int.from_bytes(header[16:], "little")
        if header[:16] == _W64_GUIDS["data"]:  # all ones: not known (kept, so not checked)
            return handle.tell(), size if size == 2**64 - 1 else max(size - 24, 0)
        if size < 24:
            return None  # a malformed size: the next chunk cannot be found
        handle.seek(size - 24 + (-size % 8), 1)
    return None


def _read_clip(path: Path, soundfile: ModuleType, chosen_by: str) -> tuple[np.ndarray, int]:
    _check_wav_length(path, chosen_by)
    try:
        data, native_sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as err:
        raise DataValidationError(
            f"Could not read audio file {path}: {err}. Expected a readable WAV (or other "
            f"libsndfile) file; remove or replace it, or narrow {chosen_by}."
        ) from err
    if data.shape[0] == 0:
        raise DataValidationError(
            f"Audio file {path} has no samples; remove it or narrow {chosen_by}."
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
    pattern: str = "*.wav",
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
    """The files of ``folder`` matching ``pattern`` (:func:`load_audio_mfcc`'s arguments),
    sorted; refuses a missing folder and no match."""
    if not folder.is_dir():
        raise DataValidationError(
            f"Audio folder {folder} does not exist or is not a folder. Expected a folder of "
            "audio files (e.g. WAV); pass an existing folder as `path`, or None for the bundled "
            "clips."
        )
    try:
        files = sorted(p for p in folder.glob(pattern) if p.is_file())
    except (ValueError, NotImplementedError) as err:
        raise DataValidationError(
            f"pattern={pattern!r} is not a valid relative glob pattern: {err}"
        ) from err
    if not files:
        raise DataValidationError(
            f"No audio files match pattern {pattern!r} in {folder}. Expected at least one file, "
            "e.g. *.wav; check the folder or the pattern."
        )
    return files


def mfcc_frames(
    files: Sequence[Path],
    settings: MfccSettings,
    *,
    chosen_by: str = "`pattern`",
    rate_key: str = "sample_rate=",
) -> pl.DataFrame:
    """The MFCC frames of ``files`` (one clip each, named by its file's stem), sorted by
    ``(clip, frame)``: the one way clips are read, whoever chose the files.

    ``chosen_by`` names what chose the files (``pattern``, ``source.path``) and ``rate_key``
    the setting of the sample rate, for the messages. Two files with one stem are refused
    (``DataValidationError``); clips of different native rates kept as they are
    (``settings.sample_rate`` None) get a ``ForecasterWarning``."""
    stems: dict[str, list[Path]] = {}
    for file in files:
        stems.setdefault(file.stem, []).append(file)
    duplicated = {stem: paths for stem, paths in stems.items() if len(paths) > 1}
    if duplicated:
        shown = "; ".join(
            f"{stem}: {', '.join(map(str, paths))}" for stem, paths in sorted(duplicated.items())
        )
        raise DataValidationError(
            f"Several audio files share a clip name ({shown}); clip names (file names without "
            f"their extension) must be unique. Narrow {chosen_by} or rename the files."
        )
    librosa, soundfile = import_audio_backend()
    frames: list[pl.DataFrame] = []
    rates: dict[int, list[str]] = {}
    for file in sorted(files, key=lambda p: p.stem):
        signal, sr = clip_signal(file, settings, librosa, soundfile, chosen_by)
        if sr not in rates:
            _check_mel_bands(sr, settings, librosa)
        rates.setdefault(sr, []).append(file.stem)
        frames.append(clip_mfcc(file, signal, sr, settings, librosa))
    if len(rates) > 1:
        _warn_mixed_rates(rates, settings, rate_key)
    return pl.concat(frames, how="vertical").sort(["clip", "frame"])


def _check_mel_bands(sr: int, settings: MfccSettings, librosa: ModuleType) -> None:
    """Refuse ``n_fft`` / ``n_mels`` whose mel filters at ``sr`` include empty ones (no
    frequency bin in them): their bands are always 0, and with few bins every coefficient
    comes out constant (librosa only warns, once per clip)."""
    with catching_warnings():
        warnings.simplefilter("ignore")
        basis = librosa.filters.mel(sr=sr, n_fft=settings.n_fft, n_mels=settings.n_mels)
    empty = int((basis.max(axis=1) <= 0).sum())
    if empty:
        raise DataValidationError(
            f"n_fft={settings.n_fft} and n_mels={settings.n_mels} leave {empty} of the "
            f"{settings.n_mels} mel bands empty at {sr:,} Hz: the spectrum has only "
            f"{settings.n_fft // 2 + 1} frequency bins to share between them, so those bands "
            "are always 0 and the MFCCs lose what they should hold. Raise n_fft (e.g. 512 or "
            "more) or lower n_mels."
        )


def _warn_mixed_rates(rates: dict[int, list[str]], settings: MfccSettings, key: str) -> None:
    """Warn that clips kept at different native rates give frames of different meaning."""
    listed = "; ".join(
        f"{sr:,} Hz: {', '.join(clips[:3])}" + (f" and {len(clips) - 3} more" * (len(clips) > 3))
        for sr, clips in sorted(rates.items())
    )
    low, high = min(rates), max(rates)
    hop = settings.hop_length
    warn_at_caller(
        f"The audio clips have different sample rates ({listed}), each kept as it is "
        f"(sample rate not set): a frame of hop_length={hop} samples spans "
        f"{1000 * hop / low:.3g} ms at {low:,} Hz but {1000 * hop / high:.3g} ms at "
        f"{high:,} Hz, and the mel bands cover different frequencies, so their MFCCs are not "
        f"comparable. Resample them all to one rate, e.g. {key}{low}.",
        ForecasterWarning,
    )


def frame_count(n_samples: Any, n_fft: int, hop_length: int) -> Any:
    """The number of librosa's centred frames of ``n_samples`` samples: the signal is padded
    with ``n_fft // 2`` samples at each end, so ``1 + (n_samples + 2 * (n_fft // 2) - n_fft)
    // hop_length`` (``1 + n_samples // hop_length`` for an even ``n_fft``). ``n_samples``:
    an integer, an integer array or a polars expression."""
    return 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop_length


def clip_signal(
    file: Path,
    settings: MfccSettings,
    librosa: ModuleType,
    soundfile: ModuleType,
    chosen_by: str = "`pattern`",
) -> tuple[np.ndarray, int]:
    """The mono samples of ``file`` (resampled to ``settings.sample_rate`` when given) and
    their rate; refuses features that would not fit in memory, before computing them.
    ``chosen_by`` names what chose the file, for the messages."""
    signal, native_sr = _read_clip(file, soundfile, chosen_by)
    sr = native_sr
    sample_rate = settings.sample_rate
    if sample_rate is not None and sample_rate != native_sr:
        _check_feature_memory(file, 24 * (len(signal) * sample_rate // native_sr + 1), "Resampling")
        signal = librosa.resample(signal, orig_sr=native_sr, target_sr=sample_rate)
        sr = sample_rate
    n_fft, hop_length, n_mels = settings.n_fft, settings.hop_length, settings.n_mels
    bins, n_frames = n_fft // 2 + 1, frame_count(signal.shape[0], n_fft, hop_length)
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
        warn_at_caller(
            f"Audio file {file} has {signal.shape[0]} samples, fewer than n_fft={n_fft}: "
            "its MFCC frames are mostly zero padding. Use a smaller n_fft or drop the clip.",
            ForecasterWarning,
        )
    with catching_warnings(), np.errstate(all="ignore"):
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
