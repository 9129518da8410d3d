"""A tiny llama-architecture GGUF model with random weights, written by the `gguf` package.

It says nothing sensible, but llama.cpp loads and runs it like any other model in well under a second,
so the tests see a real server's HTTP behaviour (model listing, SSE framing, usage, errors) without
downloading weights. The vocabulary is SentencePiece-style: the three special tokens, the 256 byte
tokens SentencePiece falls back to for characters it has no piece for, and a few dozen words.

Only the words can ever be generated: the output rows of the special and byte tokens are zero, so their
logits stay 0 while some word's is positive (for greedy decoding, with overwhelming probability), and a
stream never ends early on an end-of-sequence token nor splits a UTF-8 character.
"""

from __future__ import annotations

from pathlib import Path

WORDS = (  # noqa: SIM905 - a sentence reads better than 69 quoted words
    "hello world the a of to and is in it you that he was for on are with as I his they be at one have "
    "this from or had by word but what some we can out other were all there when up use your how said an "
    "each she which do their time if will way about many then them write would like so these her long"
).split()
CONTEXT_LENGTH = 512
EMBEDDING = 64
HEADS = 4
FEED_FORWARD = 128
LAYERS = 2
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def write_tiny_llama(path: Path, *, name: str = "tiny-llama", seed: int = 0) -> Path:
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    specials = ["<unk>", "<s>", "</s>"]
    byte_tokens = [f"<0x{value:02X}>" for value in range(256)]
    words = ["\u2581" + word for word in WORDS]  # "▁": SentencePiece's word-start marker
    tokens = specials + byte_tokens + words
    token_types = (
        [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
        + [gguf.TokenType.BYTE] * len(byte_tokens)
        + [gguf.TokenType.NORMAL] * len(words)
    )
    scores = [0.0] * (len(specials) + len(byte_tokens)) + [-float(rank) for rank in range(len(words))]

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(EMBEDDING)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBEDDING // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(token_types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    def weights(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.5, size=shape).astype(np.float32)

    # numpy shapes are ggml's dimensions reversed: (rows, columns) = (out, in).
    vocab = len(tokens)
    output = weights(vocab, EMBEDDING)
    output[: len(specials) + len(byte_tokens)] = 0.0  # never generated: see the module's docstring
    writer.add_tensor("token_embd.weight", weights(vocab, EMBEDDING))
    writer.add_tensor("output_norm.weight", np.ones(EMBEDDING, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for layer in range(LAYERS):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(EMBEDDING, dtype=np.float32))
        for projection in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{projection}.weight", weights(EMBEDDING, EMBEDDING))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(EMBEDDING, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weights(FEED_FORWARD, EMBEDDING))
        writer.add_tensor(f"{block}.ffn_up.weight", weights(FEED_FORWARD, EMBEDDING))
        writer.add_tensor(f"{block}.ffn_down.weight", weights(EMBEDDING, FEED_FORWARD))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
