"""What to do with a trained model: embed image files with a run's preprocessing (embedder), 1:1 verification
with a confidence (compare), 1:K identification against a gallery (gallery), classifiers on embeddings (classify),
and face alignment from landmarks (align). Open embedder.py first."""
