"""Voicing and F0 of the pitch tracker on real CREMA-D clips (a fidelity check, not a timing).

    python benchmarks/voicing_real_clips.py [CLIP_DIR ...]

Per clip it prints the voiced fraction of
  * "mel-loud": the frames whose mel power lies within 30 dB of the clip's loudest mel frame (in
    the quiet takes, such as 1001_DFA_DIS_XX, the room noise between the words counts too);
  * "speech": the frames (25 ms RMS) within 30 dB of the loudest and 10 dB above the noise floor;
  * "noise": the quietest quarter of the frames (room noise: should be unvoiced);
  * all frames;
and the median F0 of the voiced frames. Default clip folders: tests/data/crema_d_samples and
../shared/crema-d/samples when present.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from crema_exp.data.audio import load_audio
from crema_exp.features import pitch
from crema_exp.features.spectral import mel_spectrogram

SR, HOP, WIN, N_FFT = 16000, 160, 400, 512
FMIN, FMAX = 50.0, 400.0
LOUD_DB = 30.0
FLOOR_DB = 10.0
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIRS = [ROOT / "tests/data/crema_d_samples", ROOT.parent / "shared/crema-d/samples"]


def frame_levels(wave: np.ndarray) -> np.ndarray:
    """Level (dB) of each 25 ms frame, centred on the pitch/mel frame grid."""
    frames = 1 + wave.size // HOP
    padded = np.pad(wave, WIN // 2)
    windows = np.lib.stride_tricks.sliding_window_view(padded, WIN)[::HOP][:frames]
    return 10 * np.log10(np.mean(np.square(windows, dtype=np.float64), axis=1) + 1e-20)


def speech_frames(wave: np.ndarray) -> np.ndarray:
    """Frames within LOUD_DB of the loudest frame and FLOOR_DB above the room noise.

    The noise floor is the clip's 10th-percentile frame level (every take starts and ends in the
    room's noise); in the quiet takes that noise lies only 20-25 dB below the voice.
    """
    level = frame_levels(wave)
    return (level >= level.max() - LOUD_DB) & (level >= np.percentile(level, 10) + FLOOR_DB)


def background_frames(wave: np.ndarray) -> np.ndarray:
    """The quietest quarter of the frames: room noise between and around the words."""
    level = frame_levels(wave)
    return level <= np.percentile(level, 25)


def loud_frames(wave: np.ndarray) -> np.ndarray:
    """Frames whose mel power lies within LOUD_DB of the clip's loudest frame."""
    power = mel_spectrogram(SR, N_FFT, WIN, HOP, 80)(torch.from_numpy(wave)).sum(dim=0).numpy()
    db = 10 * np.log10(power + 1e-20)
    return db >= db.max() - LOUD_DB


def voiced_frames(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(voiced mask, F0 Hz) from the tracker, whichever version of its interface is installed."""
    result = pitch.estimate_pitch(wave, SR, HOP, FMIN, FMAX)
    if hasattr(result, "voiced"):
        return result.voiced, result.f0
    f0, voicing = result
    return voicing >= pitch.VOICED_THRESHOLD, f0


def main(dirs: list[Path]) -> None:
    torch.set_num_threads(1)
    clips = sorted({p.name: p for d in dirs if d.is_dir() for p in d.glob("*.wav")}.values())
    print(f"{'clip':<18} {'mel-loud':>8} {'speech':>7} {'noise':>6} {'all':>6} {'median F0':>9}")
    speech_fractions, noise_fractions = [], []
    for path in clips:
        wave = load_audio(path, SR)
        voiced, f0 = voiced_frames(wave)
        loud = loud_frames(wave)[:voiced.size]
        speech, noise = speech_frames(wave), background_frames(wave)
        speech_fractions.append(voiced[speech].mean())
        noise_fractions.append(voiced[noise].mean())
        median = np.median(f0[voiced]) if voiced.any() else float("nan")
        print(f"{path.stem:<18} {voiced[loud].mean():>8.1%} {voiced[speech].mean():>7.1%} "
              f"{voiced[noise].mean():>6.1%} {voiced.mean():>6.1%} {median:>9.1f}")
    print(f"{len(clips)} clips: voiced speech frames min {min(speech_fractions):.1%}, median "
          f"{np.median(speech_fractions):.1%}; voiced noise frames max {max(noise_fractions):.1%}")


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or DEFAULT_DIRS)
