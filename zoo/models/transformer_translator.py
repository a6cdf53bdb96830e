"""Transformer encoder-decoder translator (Vaswani et al. 2017), small and pre-norm."""

import keras
from keras import ops

from zoo.layers import PositionalEmbedding, TransformerDecoderLayer, TransformerEncoderLayer
from zoo.models.translator_base import Translator
from zoo.text import PAD_ID


@keras.saving.register_keras_serializable(package="zoo")
class TransformerTranslator(Translator):
    """Transformer translator: multi-head self-attention encoder, causal self-attention +
    cross-attention decoder, sinusoidal positions, pre-norm residual blocks (Xiong et al.
    2020: stable without a long warm-up), the same decoding and text interface as
    `RNNTranslator` (`greedy_decode`, `beam_decode`, `translate`, `encode_texts`,
    `decode_ids`).

    The attention weights it reports (heatmaps, export, beam search) are the last decoder
    layer's cross-attention averaged over heads, `[batch, target, source]`. Decoding runs
    each step against a fixed-size cache of the previous positions (XLA-compilable).

    Args:
        vocab_size: int, size of the shared subword vocabulary.
        d_model: int, model size.
        num_layers: int, encoder and decoder layers each.
        num_heads: int, attention heads (must divide `d_model`).
        ffn_dim: int, inner size of the feed-forward networks.
        dropout: float, on embeddings, attention weights, FFN and residual branches.
        max_length_ratio, tokenizer, decoding, beam_width, length_penalty, coverage_penalty,
            n_best, max_source_tokens, max_decode_steps: see `Translator`.

    Call arguments:
        inputs: dict with `source_ids` int `[batch, S]` and `target_in` int `[batch, T]`.

    Returns:
        logits `[batch, T, vocab]` (teacher forcing).

    Example:

    ```python
    model = zoo.build("transformer_translator", vocab_size=100, d_model=16, ...)
    model.greedy_decode(np.array([[5, 6, 3, 0]]))["attention"]   # [1, T, 4]
    ```
    """

    config_fields = ("vocab_size", "d_model", "num_layers", "num_heads", "ffn_dim", "dropout")

    def __init__(self, vocab_size=8000, d_model=256, num_layers=3, num_heads=4, ffn_dim=1024,
                 dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads "
                             f"({num_heads})")
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.dropout = dropout
        self.source_embedding = PositionalEmbedding(vocab_size, d_model, dropout,
                                                    name="source_embedding")
        self.target_embedding = PositionalEmbedding(vocab_size, d_model, dropout,
                                                    name="target_embedding")
        self.encoder_layers = [
            TransformerEncoderLayer(d_model, num_heads, ffn_dim, dropout, name=f"encoder_{i}")
            for i in range(num_layers)]
        self.decoder_layers = [
            TransformerDecoderLayer(d_model, num_heads, ffn_dim, dropout, name=f"decoder_{i}")
            for i in range(num_layers)]
        self.encoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")
        self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")
        self.output_projection = keras.layers.Dense(vocab_size, name="output_projection")

    def build(self, input_shape=None):
        shape = (None, None, self.d_model)
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        for layer in self.encoder_layers:
            layer.build(shape)
        for layer in self.decoder_layers:
            layer.build(shape, shape)
        self.encoder_norm.build(shape)
        self.decoder_norm.build(shape)
        self.output_projection.build(shape)

    def encode(self, source_ids, training=None):
        """→ `(memory [batch, S, d_model], mask [batch, S])`."""
        mask = ops.not_equal(source_ids, PAD_ID)
        x = self.source_embedding(source_ids, training=training)
        for layer in self.encoder_layers:
            x = layer(x, mask=mask, training=training)
        return self.encoder_norm(x), mask

    def decode_sequence(self, target_in, memory, mask, training=None):
        """Teacher forcing → `(logits [batch, T, vocab], attention [batch, T, S])`."""
        y = self.target_embedding(target_in, training=training)
        weights = None
        for layer in self.decoder_layers:
            y, weights = layer(y, memory, memory_mask=mask, training=training)
        return self.output_projection(self.decoder_norm(y)), weights

    def call(self, inputs, training=None):
        memory, mask = self.encode(inputs["source_ids"], training=training)
        logits, _ = self.decode_sequence(inputs["target_in"], memory, mask, training=training)
        return logits

    def teacher_forced_attention(self, source_ids, target_in):
        """Last-layer cross-attention `[batch, T, S]` of the reference translation."""
        memory, mask = self.encode(source_ids, training=False)
        return self.decode_sequence(target_in, memory, mask, training=False)[1]

    # -- decoding hooks (see Translator.search) -------------------------------------------------
    def prepare_decoding(self, source_ids, max_length):
        memory, mask = self.encode(source_ids, training=False)
        memory_keys = [layer.cross_attention.project_keys(memory)
                       for layer in self.decoder_layers]
        batch = ops.shape(source_ids)[0]
        caches = [layer.initial_cache(batch, max_length, memory.dtype)
                  for layer in self.decoder_layers]
        return (memory, memory_keys), mask, caches

    def decoding_step(self, context, mask, tokens, step, state):
        memory, memory_keys = context
        y = self.target_embedding(tokens, position=step, training=False)
        caches = []
        weights = None
        for layer, keys, cache in zip(self.decoder_layers, memory_keys, state, strict=True):
            y, weights, cache = layer.step(y, step, cache, memory, mask, keys)
            caches.append(cache)
        return self.output_projection(self.decoder_norm(y)), weights, caches
