"""The `v_aᵀ tanh(W_q q + W_k k)` score shared by Bahdanau (additive) and Luong "concat"."""

import keras
from keras import ops

from zoo.attention.base_attention import BaseAttention, clone_initializer, expand_query


class AdditiveScoreAttention(BaseAttention):
    """Base of the layers scoring with a one-hidden-layer MLP, `v_aᵀ tanh(W_q q + W_k k)`.

    `W_k k` does not depend on the query: `project_keys` computes it once per source sentence.
    Subclasses add their options through `build_score_options(units)` and compute the scores
    from `hidden_states(query, keys)`.

    Args:
        units: int or None. Size of the MLP's hidden layer (of `v_a`); None = the key dim.
        kernel_initializer: initializer of `W_q`, `W_k` and `v_a`.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, units=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _units(self, keys_shape):
        return self.units or keys_shape[-1]

    def _projection(self, units, name):
        return keras.layers.Dense(
            units, use_bias=False, name=name,
            kernel_initializer=clone_initializer(self.kernel_initializer), dtype=self.dtype_policy,
        )

    def build_keys(self, keys_shape):
        self.key_projection = self._projection(self._units(keys_shape), "key_projection")
        self.key_projection.build(keys_shape)

    def compute_projected_keys(self, keys):
        return self.key_projection(keys)

    def build_attention(self, query_shape, keys_shape, values_shape):
        units = self._units(keys_shape)
        self.query_projection = self._projection(units, "query_projection")
        self.query_projection.build(query_shape)
        self.score_vector = self.add_weight(
            name="score_vector", shape=(units,),
            initializer=clone_initializer(self.kernel_initializer)
        )
        self.build_score_options(units)

    def build_score_options(self, units):
        """Weights of the subclass's options (hook, default none)."""

    def hidden_states(self, query, keys):
        """`W_q q + W_k k` for every (query, key) pair: `([batch, T, S, units], squeeze)`."""
        query3d, squeeze = expand_query(query)
        hidden = ops.expand_dims(self.query_projection(query3d), 2) + ops.expand_dims(keys, 1)
        return hidden, squeeze

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        })
        return config
