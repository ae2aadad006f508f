"""Reinforcement learning on verifiable rewards: GRPO through TRL, rewarded by the toolkit's own verifiers."""
