"""The file names of a run folder (docs/interfaces.md "Train job"): written by the train job,
read by compare. Named once here so writer and reader cannot drift apart."""

STATUS = "status.json"
RESOLVED_SETTINGS = "resolved_settings.json"
RESOLVED_CONFIG = "resolved_config.yaml"
HISTORY = "history.json"
METRICS = "metrics.csv"
TEST_METRICS = "test_metrics.json"
TEST_PREDICTIONS = "test_predictions.csv"
CLASSIFICATION_REPORT = "classification_report.json"
CONFUSION_MATRIX = "confusion_matrix.png"
TRAINING_CURVES = "training_curves.png"
BEST_MODEL = "best_model.pt"
HYDRA_OVERRIDES = ".hydra/overrides.yaml"  # written by Hydra: the command-line overrides
LAYER_WEIGHTS = "layer_weights.png"  # learned SSL layer mix only
HUMAN_COMPARISON = "human_comparison.json"  # corpora with listener ratings only
HUMAN_COMPARISON_FIGURE = "human_comparison.png"
