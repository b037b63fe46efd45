"""Evaluation: how a face system is measured, on embeddings (B, D) and distances.

distances.py and checks.py are the one home of squared distances, normalisation and input checks; metrics.py
(ROC, AUC, EER, FAR/FRR, VAL@FAR, k-fold accuracy) is the heart of it; protocols.py builds the test pairs;
identification.py (1:N, closed set) and open_set.py (1:N with rejection), clustering.py (N:N) and baselines.py
(raw pixels, Eigenfaces) measure the other uses; compatibility.py measures whether a new model's embeddings can be
compared with an old model's (harmonic embeddings).
"""

from tinyface.eval.baselines import Eigenfaces, pixel_embeddings
from tinyface.eval.checks import check_distances, check_embeddings, check_labels
from tinyface.eval.clustering import NOISE, chinese_whispers, cluster_report, dbscan, pairwise_precision_recall
from tinyface.eval.compatibility import compatibility_report, mixed_distances, update_gain
from tinyface.eval.distances import l2_normalize, pair_distances, squared_distances, symmetrize
from tinyface.eval.identification import OpenSetResult, cmc, one_shot_rank1, open_set_identification, split_gallery
from tinyface.eval.metrics import (
    KFoldAccuracy,
    KFoldVal,
    ValAtFar,
    accuracy_at,
    auc,
    best_threshold,
    eer,
    far_frr,
    kfold_accuracy,
    kfold_val,
    roc_curve,
    stratified_folds,
    threshold_at_far,
    val_at_far,
    verification_report,
)
from tinyface.eval.open_set import OpenSetPoint, open_set_report
from tinyface.eval.protocols import lfw_pairs_to_indices, pairs_from_labels

__all__ = [
    "NOISE",
    "Eigenfaces",
    "KFoldAccuracy",
    "KFoldVal",
    "OpenSetPoint",
    "OpenSetResult",
    "ValAtFar",
    "accuracy_at",
    "auc",
    "best_threshold",
    "check_distances",
    "check_embeddings",
    "check_labels",
    "chinese_whispers",
    "cluster_report",
    "cmc",
    "compatibility_report",
    "dbscan",
    "eer",
    "far_frr",
    "kfold_accuracy",
    "kfold_val",
    "l2_normalize",
    "lfw_pairs_to_indices",
    "mixed_distances",
    "one_shot_rank1",
    "open_set_identification",
    "open_set_report",
    "pair_distances",
    "pairwise_precision_recall",
    "pairs_from_labels",
    "pixel_embeddings",
    "roc_curve",
    "split_gallery",
    "squared_distances",
    "stratified_folds",
    "symmetrize",
    "threshold_at_far",
    "update_gain",
    "val_at_far",
    "verification_report",
]
