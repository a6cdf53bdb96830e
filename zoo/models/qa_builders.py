"""Registered extractive-QA builders (task `qa`, SQuAD v1.1)."""

from typing import ClassVar

from zoo.config import ConfigError
from zoo.models.bidaf_reader import RNNS, BiDAFReader
from zoo.models.catalog import MODELS, ModelBuilder
from zoo.options import Option


@MODELS.register("qa")
class BiDAFReaderBuilder(ModelBuilder):
    """`qa`: BiDAF (Seo et al. 2017) on subwords, sized for 25 minutes of CPU
    training (configs/qa.yaml is the acceptance run).

    The sizes trade quality per question for questions per second. Train-step throughput on
    real SQuAD batches, all variants interleaved in one process on the 2-core EPYC while other
    jobs shared it (so also as questions per CPU-second of the process, steadier under load):

    * Keras GRU 64, batch 128: the paper's end BiRNN (`end_rnn: true`) 116 q/cpu-s, without
      it 156 (+34%); hidden 48: 146; Keras LSTM: 118, about the same as the GRU (a Keras RNN
      on CPU is a `tf.while_loop` whose per-step op overhead, not its matmuls, dominates at
      this size); embeddings 96 without highway: 131; batch 64 ~25% fewer questions/s than
      128; mixed_bfloat16 +6% only (little time in matmuls); an XLA train step was slower.
    * The LSTMs run by TensorFlow's fused kernel (`FusedBidirectionalLSTM`): one BiLSTM layer
      forward + backward 162 ms wall against 299 ms for Keras' (batch 128 × 160 × 64 units,
      machine lightly loaded): it uses both cores inside one op. In the whole model under
      load: 68 q/s wall best (130 q/cpu-s) against the GRU's 69 (141); with it batch 64 is
      within ~10% of batch 128 per question, and gives twice the updates in the budget.
      `end_rnn: true` costs ~30%, hidden 96 ~30%.
    """

    model_class = BiDAFReader
    # XLA has no kernel for the fused LSTM
    derived: ClassVar[dict] = {"fused_lstm": lambda config: not config["jit_compile"]}

    task = "qa"
    # SQuAD v1.1 under $ZOO_DATA_DIR/qa; the official dev set is both the validation set (its
    # first `eval_limit` questions) and the test set.
    overrides: ClassVar[dict] = {
        "dataset": "squad",
        "eval_limit": 2000,  # validation: the first dev questions (0: all)
        "vocab_size": 16000,
        "time_budget_minutes": 25.0,
        "clip_norm": 5.0,
    }

    @classmethod
    def architecture(cls):
        return {
            "attention": Option("bidaf", "fixed: recorded in MLflow like the translators'"),
            "embedding_dim": Option(128, "token embedding size"),
            "highway_layers": Option(1, "highway layers over the embeddings"),
            "hidden_units": Option(64, "units of each recurrent direction"),
            "rnn": Option("lstm", "the recurrent cell: " + ", ".join(RNNS)),
            "modeling_layers": Option(1, "BiRNN layers of the modeling layer"),
            "fusion_units": Option(128, "size the attention output G is projected to before the "
                                  "modeling layer (0: G as is)"),
            "end_rnn": Option(False, "the paper's extra BiRNN before the end pointer"),
            "dropout": Option(0.1, "dropout rate, in [0, 1)"),
        }

    @classmethod
    def validate(cls, config):
        if config["dataset"] != "squad":
            raise ConfigError(f"key 'dataset': {cls.registered_name} trains on squad, got "
                              f"{config['dataset']!r}")
        if config["attention"] != "bidaf":
            raise ConfigError(f"key 'attention': {cls.registered_name} uses bidaf attention, "
                              f"got {config['attention']!r}")
        if config["rnn"] not in RNNS:
            raise ConfigError(f"key 'rnn' must be one of {', '.join(RNNS)}, got "
                              f"{config['rnn']!r}")
        for key in ("embedding_dim", "hidden_units", "modeling_layers"):
            if config[key] <= 0:
                raise ConfigError(f"key {key!r} must be positive, got {config[key]}")
        for key in ("highway_layers", "fusion_units", "eval_limit", "heatmaps", "samples"):
            if config[key] < 0:
                raise ConfigError(f"key {key!r} must be >= 0, got {config[key]}")
        if config["train_limit"] is not None and config["train_limit"] <= 0:
            raise ConfigError(f"key 'train_limit' must be positive or null, got "
                              f"{config['train_limit']}")
        if not 0 <= config["dropout"] < 1:
            raise ConfigError(f"key 'dropout' must be in [0, 1), got {config['dropout']}")
