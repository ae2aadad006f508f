"""Distill: student presets, SFT/RSFT trainers per backend, evaluation generation."""
