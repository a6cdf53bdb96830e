"""Every config key that is not a model's architecture, defined once (in the style of
OpenNMT-tf's `auto_config`): its default, what it means, which tasks take it and the rule its
value must follow.

A builder declares only its architecture keys and the defaults in which its model differs
(`overrides`); `defaults(task, architecture, overrides)` gives its full flat config and
`validate(config)` checks the keys defined here. `docs/configuration.md` is generated from
these definitions (`python -m zoo.config_docs`).

Example:

```python
from zoo import options

config = options.defaults("sentiment", {"dropout": options.Option(0.5, "dropout rate")},
                          overrides={"learning_rate": 1e-3})
options.validate(config)
```
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from zoo.config import ConfigError
from zoo.data.english_text import CORPORA

TRANSLATION, SUMMARIZATION, QA, SENTIMENT = "translation", "summarization", "qa", "sentiment"
DIALOGUE = "dialogue"
GENERATION = (TRANSLATION, SUMMARIZATION, DIALOGUE)  # the tasks that decode text


@dataclasses.dataclass(frozen=True)
class Option:
    """One config key.

    Args:
        default: the value a model takes unless its builder overrides it; its type is the type
            a config must give (`None`: any).
        help: what the key means, one sentence (the docs' "meaning" column).
        tasks: the tasks whose models take the key; `None`: every model.
        rule: a check of the value: "positive", ">= 0", ">= 2", "[0, 1)" or "[0, 1) (0: off)".
        choices: the values allowed, in the order an error message lists them.
    """

    default: Any
    help: str
    tasks: tuple[str, ...] | None = None
    rule: str | None = None
    choices: tuple[str, ...] | None = None

    def takes(self, task: str) -> bool:
        """Whether a model of `task` takes this key."""
        return self.tasks is None or task in self.tasks


# rule -> (what the error says the value must be, the test)
RULES = {
    "positive": ("positive", lambda value: value > 0),
    ">= 0": (">= 0", lambda value: value >= 0),
    ">= 2": (">= 2 (a subword and EOS)", lambda value: value >= 2),
    "[0, 1)": ("in [0, 1)", lambda value: 0 <= value < 1),
    "[0, 1) (0: off)": ("in [0, 1) (0: off)", lambda value: 0.0 <= value < 1.0),
}

DECODINGS = ("greedy", "beam")  # the strategies of zoo.decoding.STRATEGIES
STRATEGIES = ("default", "mirrored", "multi_worker")
LEARNING_RATE_SCALINGS = ("none", "linear", "sqrt")

DATA = {
    "dataset": Option(None, "the corpus the task reads (each model sets its own)"),
    "train_limit": Option(None, "at most this many training examples (null: all)"),
    "eval_limit": Option(None, "at most this many validation examples (null: all)"),
    "vocab_size": Option(8000, "vocabulary size: SentencePiece pieces, or the most frequent "
                         "words with tokenization: word", rule="positive"),
    # translation
    "source_lang": Option("de", "source language of the Multi30k pairs", (TRANSLATION,)),
    "target_lang": Option("en", "target language of the Multi30k pairs", (TRANSLATION,)),
    "max_subwords": Option(50, "training pairs with a longer side are dropped",
                           (TRANSLATION,), rule="positive"),
    # summarization
    "valid_size": Option(500, "documents held out of train for validation (the corpora have "
                         "no validation split here)", (SUMMARIZATION,), rule="positive"),
    "lowercase": Option(True, "lowercase the text before tokenizing",
                        (SUMMARIZATION, SENTIMENT)),
    "max_source_subwords": Option(200, "longer sources are cut after this many subwords",
                                  (SUMMARIZATION,), rule="positive"),
    "max_target_subwords": Option(32, "longer reference summaries are cut for training",
                                  (SUMMARIZATION,), rule="positive"),
    # qa
    "train_extra": Option(True, "add train_extra.jsonl (65,815 questions) to train.jsonl",
                          (QA,)),
    "test_limit": Option(0, "test: the first dev questions (0: all 10,570)", (QA,),
                         rule=">= 0"),
    "max_context_tokens": Option(320, "contexts are cut to this many subwords", (QA,),
                                 rule="positive"),
    "max_question_tokens": Option(40, "questions are cut to this many subwords", (QA,),
                                  rule="positive"),
    "max_answer_tokens": Option(30, "longest answer span predicted, in subwords", (QA,),
                                rule="positive"),
    # sentiment
    "valid_sentences": Option(500, "training sentences held out for validation", (SENTIMENT,),
                              rule="positive"),
    "valid_rows": Option(0, "> 0: hold out this many random training rows for validation "
                         "instead (the anchor's way; zoo/tasks/sentiment.py)", (SENTIMENT,),
                         rule=">= 0"),
    "tokenization": Option("subword", "subword: SentencePiece pieces; word: whitespace tokens "
                        "looked up in a word vocabulary (unknown words: the unknown id), for "
                        "pre-tokenized text such as SST's", (SENTIMENT,),
                        choices=("subword", "word")),
    "max_tokens": Option(128, "sentences are cut to this many tokens", (SENTIMENT,),
                         rule="positive"),
    # dialogue
    "history_turns": Option(3, "a response is conditioned on the turns before it, at most "
                            "this many", (DIALOGUE,), rule="positive"),
    "valid_dialogues": Option(300, "training dialogues held out for validation (all their "
                              "pairs)", (DIALOGUE,), rule="positive"),
    "max_history_subwords": Option(128, "histories keep their last this many subwords",
                                   (DIALOGUE,), rule="positive"),
    "max_response_subwords": Option(48, "responses are cut to this many subwords for training; "
                                    "decoding stops after as many", (DIALOGUE,),
                                    rule="positive"),
}

WORD_VECTORS = {
    "word_vectors": Option(None, "the embeddings' start: a path, pretrained word vectors "
                           "(GloVe, word2vec, fastText; docs/training.md); true, skip-gram "
                           "vectors of the pieces (summarization, sentiment); null: random"),
    "word_vector_corpora": Option([], "unlabeled English the vectors also learn from (names of "
                                  "zoo.data.english_text.CORPORA)", (SUMMARIZATION, SENTIMENT)),
    "word_vector_limit": Option(None, "texts per corpus (null: all)",
                                (SUMMARIZATION, SENTIMENT)),
    "word_vector_window": Option(5, "skip-gram context window", (SUMMARIZATION, SENTIMENT),
                                 rule="positive"),
    "word_vector_epochs": Option(5, "skip-gram training epochs", (SUMMARIZATION, SENTIMENT),
                                 rule="positive"),
}

DECODING = {
    "max_length_ratio": Option(1.5, "decoding stops after ratio × source length + 10 steps",
                               (TRANSLATION, SUMMARIZATION)),
    "decoding": Option("greedy", "what translate, the test score, zoo evaluate and the "
                       "export use (zoo export --set decoding=greedy overrides)", GENERATION,
                       choices=DECODINGS),
    "beam_width": Option(5, "hypotheses kept per sentence by beam search", GENERATION,
                         rule="positive"),
    "length_penalty": Option(0.0, "GNMT length penalty α (0: none)", GENERATION, rule=">= 0"),
    "coverage_penalty": Option(0.0, "GNMT coverage penalty β (0: none)", GENERATION,
                               rule=">= 0"),
    "n_best": Option(1, "hypotheses returned per sentence (at most beam_width; an export's "
                     "hypotheses outputs)", GENERATION,
                     rule="positive"),
    # translation: the serving bounds of translate and of the export
    "max_source_tokens": Option(128, "sources are cut to this many ids, EOS included",
                                (TRANSLATION,), rule=">= 2"),
    "max_decode_steps": Option(200, "decoding stops after min(max_length_ratio · S + 10, "
                               "this) steps", (TRANSLATION,), rule="positive"),
    "val_decoding": Option("greedy", "the decoding of the validation BLEU logged each epoch "
                           "(a progress signal; the best epoch is picked by best_by)",
                           (TRANSLATION,), choices=DECODINGS),
    # summarization
    "max_summary_length": Option(32, "summaries stop after this many subwords",
                                 (SUMMARIZATION,), rule="positive"),
    "trigram_blocking": Option(True, "a hypothesis never repeats a trigram",
                               (SUMMARIZATION, DIALOGUE)),
}

TRAINING = {
    "batch_size": Option(64, "examples per training batch (per worker; see per_replica_batch)",
                         rule="positive"),
    "epochs": Option(5, "passes over the training data at most", rule="positive"),
    "time_budget_minutes": Option(0.0, "training stops at the first epoch end past this "
                                  "(0: no budget)"),
    "learning_rate": Option(2e-3, "Adam's peak learning rate"),
    "warmup_steps": Option(200, "linear warm-up steps before the cosine decay"),
    "final_lr_fraction": Option(0.05, "the learning rate at the end, a fraction of the peak"),
    "clip_norm": Option(1.0, "gradients are clipped to this global norm"),
    "ema_momentum": Option(0.0, "> 0: evaluate and keep the weights' moving average",
                           rule="[0, 1) (0: off)"),
    "label_smoothing": Option(0.1, "label smoothing of the cross-entropy",
                              (TRANSLATION, SUMMARIZATION, SENTIMENT, DIALOGUE)),
    "weight_by_length": Option(False, "loss weight ∝ subwords (mean 1): sentences over "
                               "phrases", (SENTIMENT,)),
    "jit_compile": Option(False, "compile the train step with XLA"),
    "precision": Option("float32", "float32 or mixed_bfloat16 (training only; float32 where "
                        "the CPU has no bfloat16 arithmetic; exports are float32)"),
    "seed": Option(0, "seed of Python, NumPy, TensorFlow and the data order"),
    "init_from": Option(None, "start from a trained model's weights and tokenizer (a name, "
                        "models:/NAME/VERSION, runs:/RUN_ID, run directory or .keras file; "
                        "the architecture keys must match it)"),
    "intra_op_threads": Option(0, "TensorFlow threads inside one op (0: TensorFlow's choice)"),
    "inter_op_threads": Option(0, "TensorFlow ops run at once (0: TensorFlow's choice)"),
    "best_by": Option("val_loss", "the epoch whose weights are kept, evaluated and exported: "
                      "lowest val_loss, or the highest validation task score, "
                      "val_<headline> (val_bleu, val_rouge1, val_f1, val_accuracy)"),
}

DISTRIBUTION = {
    "strategy": Option("default", "one device, mirrored over local devices, or multi_worker "
                       "(TF_CONFIG names the cluster)", choices=STRATEGIES),
    "per_replica_batch": Option(False, "True: batch_size per worker (the global batch grows "
                                "with the workers)"),
    "learning_rate_scaling": Option("none", "how learning_rate follows the global batch",
                                    choices=LEARNING_RATE_SCALINGS),
    "heartbeat_timeout_seconds": Option(10.0, "a silent worker counts as lost after this "
                                        "(TensorFlow's own default)", rule="positive"),
    "cluster_timeout_seconds": Option(600.0, "workers wait this long for each other at start",
                                      rule="positive"),
}

EVALUATION = {
    "val_bleu_limit": Option(0, "validation BLEU each epoch on this many sentences (0: none)",
                             (TRANSLATION,)),
    "val_rouge_limit": Option(500, "validation ROUGE each epoch on this many documents",
                              (SUMMARIZATION,)),
    "val_response_limit": Option(500, "validation BLEU each epoch on this many pairs (0: "
                                 "perplexity only)", (DIALOGUE,), rule=">= 0"),
    "eval_batch_size": Option(128, "batch size of the QA evaluation", (QA,), rule="positive"),
    "heatmaps": Option(4, "attention heatmaps logged as artifacts"),
    "samples": Option(20, "sample predictions logged as a table"),
}

# Section title -> its options, in the order of a resolved config and of the docs.
SECTIONS = {
    "Data": DATA,
    "Word vectors": WORD_VECTORS,
    "Decoding": DECODING,
    "Training": TRAINING,
    "Distribution": DISTRIBUTION,
    "Evaluation": EVALUATION,
}
OPTIONS = {key: option for section in SECTIONS.values() for key, option in section.items()}


def options_for(task: str) -> dict[str, Option]:
    """The options a model of `task` takes, by key."""
    return {key: option for key, option in OPTIONS.items() if option.takes(task)}


def defaults(task: str, architecture: dict[str, Option], overrides: dict | None = None,
             model: str | None = None) -> dict:
    """A model's full flat config: `model`, `task`, its architecture keys and every option its
    task takes, at their defaults, with `overrides` over them.

    Args:
        task: the registered task of the model.
        architecture: the model's own keys (`Option`s).
        overrides: defaults in which the model differs from the shared definitions; each must
            name a key the model takes.
        model: the registered name (the `model` key).

    Returns:
        A new dict (its lists and dicts are copies).
    """
    shared = options_for(task)
    clash = sorted(set(shared) & set(architecture))
    if clash:
        raise ValueError(f"architecture keys {clash} are shared options; override them instead")
    config = {"model": model, "task": task}
    config.update({key: option.default for key, option in architecture.items()})
    config.update({key: option.default for key, option in shared.items()})
    for key, value in (overrides or {}).items():
        if key not in config:
            raise ValueError(f"override of {key!r}, which a {task} model does not take")
        config[key] = value
    return copy.deepcopy(config)


def validate(config: dict) -> None:
    """Check the keys of a resolved config that are defined here.

    Raises:
        ConfigError: naming the key, the rule and the value.
    """
    for key, option in OPTIONS.items():
        if key not in config:
            continue
        value = config[key]
        if option.rule is not None:
            must, test = RULES[option.rule]
            if not test(value):
                raise ConfigError(f"key {key!r} must be {must}, got {value}")
        if option.choices is not None and value not in option.choices:
            raise ConfigError(f"key {key!r} must be one of {', '.join(option.choices)}, got "
                              f"{value!r}")
    if "n_best" in config and config["n_best"] > config["beam_width"]:
        raise ConfigError(f"key 'n_best' ({config['n_best']}) must be at most beam_width "
                          f"({config['beam_width']})")
    if "word_vector_corpora" in config:
        _validate_corpora(config["word_vector_corpora"])
    _validate_word_vectors(config)


def _validate_word_vectors(config):
    value = config.get("word_vectors")
    if value is None or value is False or (isinstance(value, str) and value):
        return
    if value is True and "word_vector_corpora" in config:
        return  # skip-gram vectors, learned by the tasks that take the word_vector_* keys
    skip_gram = ", or true (skip-gram vectors)" if "word_vector_corpora" in config else ""
    raise ConfigError(f"key 'word_vectors' must be a path to a vectors file, null{skip_gram}, "
                      f"got {value!r}")


def _validate_corpora(corpora):
    if not isinstance(corpora, list):
        raise ConfigError(f"key 'word_vector_corpora' must be a list of names from "
                          f"{sorted(CORPORA)}, got {corpora!r}")
    unknown = sorted(set(corpora) - set(CORPORA))
    if unknown:
        raise ConfigError(f"key 'word_vector_corpora': unknown {unknown}; choose from "
                          f"{sorted(CORPORA)}")
