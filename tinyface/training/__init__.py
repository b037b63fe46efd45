"""Training and measuring a face model: who trains and who tests (split), the loop (train), its checkpoints,
measuring a checkpoint on held-out people (measure), run folders and LFW View 2's ten trainings (runs), and the
figures of a run. Open train.py first."""
