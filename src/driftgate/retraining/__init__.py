"""Retraining: the champion/challenger controller and the promotion rule (pure, in `rule`)."""
