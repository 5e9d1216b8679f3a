"""BiGRU + Transformer encoder with attentive/statistics pooling (no 2-D convolutions)."""

from crema_exp.models.classifier import EmotionClassifier

__all__ = ["EmotionClassifier"]
