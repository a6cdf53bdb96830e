"""The config keys of the embedding init from skip-gram vectors (`zoo/text/word_vectors.py`),
shared by the builders whose task supports it (sentiment, summarization)."""

from zoo.config import ConfigError
from zoo.data.english_text import CORPORA


def word_vector_defaults(corpora):
    """The keys' defaults; `corpora`: the unlabeled English (names of
    `zoo.data.english_text.CORPORA`) learned from besides the task's own training text."""
    return {
        "word_vectors": False,  # True: embeddings start from skip-gram vectors of the pieces
        "word_vector_corpora": list(corpora),
        "word_vector_limit": None,  # texts per corpus (None: all)
        "word_vector_window": 5,
        "word_vector_epochs": 5,
    }


def validate_word_vector_keys(config):
    for key in ("word_vector_window", "word_vector_epochs"):
        if config[key] <= 0:
            raise ConfigError(f"key {key!r} must be positive, got {config[key]}")
    corpora = config["word_vector_corpora"]
    if not isinstance(corpora, list):
        raise ConfigError(f"key 'word_vector_corpora' must be a list of names from "
                          f"{sorted(CORPORA)}, got {corpora!r}")
    unknown = sorted(set(corpora) - set(CORPORA))
    if unknown:
        raise ConfigError(f"key 'word_vector_corpora': unknown {unknown}; choose from "
                          f"{sorted(CORPORA)}")
