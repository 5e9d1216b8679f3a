"""CREMA-D data layer: corpus discovery, actor-disjoint splits, audio loading and integrity checks."""

from crema_exp.data.audio import AudioError, load_audio
from crema_exp.data.corpus import Corpus, CorpusError, load_corpus, read_corpus, write_skipped
from crema_exp.data.integrity import IntegrityReport, check_integrity
from crema_exp.data.splits import save_splits

__all__ = [
    "AudioError",
    "Corpus",
    "CorpusError",
    "IntegrityReport",
    "check_integrity",
    "load_audio",
    "load_corpus",
    "read_corpus",
    "save_splits",
    "write_skipped",
]
