"""Toy tasks that prove the driver contract fits detection and sequence-to-sequence training."""
