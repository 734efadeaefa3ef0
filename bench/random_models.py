"""Llama-shaped models with random weights, for timing GPU paths at 1B-7B sizes without downloading weights.

Shared by bench_embed.py and bench_quality.py (both run as scripts, so this folder is on sys.path).
"""

from __future__ import annotations

# (hidden, layers, heads, kv heads, ffn, vocab)
RANDOM_CONFIGS = {
    "llama-1b": (2048, 16, 32, 8, 8192, 128256),  # Llama-3.2-1B shapes
    "llama-3b": (3072, 28, 24, 8, 8192, 128256),  # Llama-3.2-3B shapes
    "llama-7b": (4096, 32, 32, 32, 11008, 32000),  # Llama-2-7B shapes
    "deepseek-math-7b": (4096, 30, 32, 32, 11008, 102400),  # the paper's base model shapes (MHA)
}


def random_causal_lm(name: str, tokenizer, dtype, device: str):
    """A causal LM of the named shapes, seeded (0), untied head, vocabulary at least the tokenizer's, in eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, layers, heads, kv, ffn, vocab = RANDOM_CONFIGS[name]
    config = LlamaConfig(vocab_size=max(vocab, len(tokenizer)), hidden_size=hidden, intermediate_size=ffn,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                         max_position_embeddings=8192, tie_word_embeddings=False,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        return LlamaForCausalLM(config).to(dtype).eval()
