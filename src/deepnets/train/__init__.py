"""The training loops (supervised now; layer-wise pre-training and reinforcement later)."""
