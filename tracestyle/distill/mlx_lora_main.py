"""`python -m tracestyle.distill.mlx_lora_main -c CONFIG`: mlx-lm's LoRA trainer on the exact texts the hf backend
trains on.

Why: mlx-lm's completions dataset wraps every prompt/completion row in the tokenizer's chat template (read in
mlx_lm/tuner/datasets.py). Our rows already hold the student's prompt (build_prompt: the chat template or the
plain "Question: … Answer:" format) and its completion with the end token, so they are tokenized as they stand,
the prompt masked, as distill.examples.encode_example does for the hf backend.
"""

from __future__ import annotations


def plain_process(self, d: dict):
    tok = self.tokenizer
    p = tok.encode(d[self.prompt_key], add_special_tokens=False)
    c = tok.encode(d[self.completion_key], add_special_tokens=False)
    return (p + c, len(p)) if self.mask_prompt else p + c


def main() -> None:
    from mlx_lm import lora
    from mlx_lm.tuner import datasets

    datasets.CompletionsDataset.process = plain_process
    lora.main()


if __name__ == "__main__":
    main()
