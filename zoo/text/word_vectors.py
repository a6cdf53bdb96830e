"""Word vectors for a model's embedding tables: learned as skip-gram vectors of the subword
pieces (Mikolov et al. 2013, gensim's Word2Vec) from unlabeled text, or read from a file of
pretrained word vectors (GloVe, word2vec, fastText).

The pieces are the ones the model reads: texts go through the model's own normalisation and
SentencePiece tokenizer first. From a file of word vectors, a piece gets

1. if it starts a word (SentencePiece's `▁` mark; every entry of a word vocabulary, `tokenization:
   word`), the vector of the word it spells (the exact word first, else its lower-cased
   form), or else
2. the mean of the vectors of the words of the training texts that it is a piece of (words
   that have a vector), or else
3. nothing: it keeps the layer's random init, as do the padding, unknown, BOS and EOS ids.
"""

import collections
from pathlib import Path

import gensim
import numpy as np
import tensorflow as tf

from zoo.data.english_text import unlabeled_english
from zoo.text.subword_tokenizer import EOS_ID

TOKENIZE_CHUNK = 4096  # texts per in-graph tokenizer call


def piece_sentences(tokenizer, texts, normalize=None):
    """Texts → lists of piece ids as strings (Word2Vec's words); empty texts dropped."""
    sentences = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        chunk = tf.constant(texts[start:start + TOKENIZE_CHUNK])
        if normalize is not None:
            chunk = normalize(chunk)
        for row in tokenizer.tokenize(chunk).to_list():
            if row:
                sentences.append([str(piece) for piece in row])
    return sentences


def train_piece_vectors(tokenizer, texts, dim, *, normalize=None, window=5, epochs=5,
                        negative=10, sample=1e-4, seed=0, workers=2):
    """Skip-gram with negative sampling over `texts`' pieces.

    Args:
        tokenizer: a `zoo.text.SubwordTokenizer` or `WordTokenizer`.
        texts: list of strings.
        dim: int, vector size (the model's `embedding_dim`).
        normalize: optional function of a string tensor applied before tokenizing.
        window, epochs, negative, sample: Word2Vec's context window, passes, negative samples
            and frequent-word subsampling threshold.
        seed, workers: Word2Vec's seed and threads (one thread is exactly reproducible).

    Returns:
        `(vectors, found)`: float32 `[vocab_size, dim]` vectors and a bool `[vocab_size]` mask
        of the pieces that occurred (the other rows are zero; callers keep their own init).
    """
    sentences = piece_sentences(tokenizer, texts, normalize)
    if not sentences:
        raise ValueError("no text to learn word vectors from")
    model = gensim.models.Word2Vec(sentences, vector_size=dim, window=window, min_count=1,
                                   sg=1, negative=negative, sample=sample, epochs=epochs,
                                   seed=seed, workers=workers)
    vectors = np.zeros((tokenizer.vocab_size, dim), np.float32)
    found = np.zeros(tokenizer.vocab_size, bool)
    for word, index in model.wv.key_to_index.items():
        vectors[int(word)] = model.wv.vectors[index]
        found[int(word)] = True
    return vectors, found


def load_vectors_file(path):
    """Word vectors from a file: word2vec binary (`.bin`), or text with a `count dim` header
    (word2vec, fastText `.vec`) or without one (GloVe). Returns gensim `KeyedVectors`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"key 'word_vectors': no vectors file {path}")
    if path.suffix == ".bin":
        return gensim.models.KeyedVectors.load_word2vec_format(str(path), binary=True)
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.readline().split()
    header = len(first) == 2 and all(field.isdigit() for field in first)
    try:
        return gensim.models.KeyedVectors.load_word2vec_format(
            str(path), binary=False, no_header=not header, unicode_errors="replace")
    except ValueError as error:
        raise ValueError(f"key 'word_vectors': {path} is not a GloVe, word2vec or fastText "
                         f"vectors file ({error})") from None


def file_piece_vectors(tokenizer, keyed_vectors, texts, normalize=None):
    """Piece vectors from pretrained word vectors, by the rule of this module's docstring.

    Returns:
        `(vectors, found, whole_words)`: float32 `[vocab_size, dim]`, the bool mask of the
        pieces that got a vector, and the bool mask of those that got their own word's.
    """
    vocab, dim = tokenizer.vocab_size, keyed_vectors.vector_size
    pieces = [p.decode("utf-8") for p in tokenizer.id_to_string(tf.range(vocab)).numpy()]
    vectors = np.zeros((vocab, dim), np.float32)
    whole = np.zeros(vocab, bool)
    for index, piece in enumerate(pieces):
        word = tokenizer.whole_word(piece)
        if index <= EOS_ID or not word:
            continue  # padding, unknown, BOS, EOS, the bare mark, pieces inside a word
        for candidate in (word, word.lower()):
            if candidate in keyed_vectors.key_to_index:
                vectors[index], whole[index] = keyed_vectors[candidate], True
                break
    # The words of the texts that have a vector, each once, as the model splits them.
    words = collections.Counter()
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        chunk = tf.constant(texts[start:start + TOKENIZE_CHUNK])
        if normalize is not None:
            chunk = normalize(chunk)
        for text in chunk.numpy():
            words.update(text.decode("utf-8").split())
    known = [w for w in words if w in keyed_vectors.key_to_index]
    sums, counts = np.zeros((vocab, dim), np.float64), np.zeros(vocab)
    for start in range(0, len(known), TOKENIZE_CHUNK):
        batch = known[start:start + TOKENIZE_CHUNK]
        for word, ids in zip(batch, tokenizer.tokenize(tf.constant(batch)).to_list(),
                             strict=True):
            for piece in set(ids):
                sums[piece] += keyed_vectors[word]
                counts[piece] += 1
    mean = ~whole & (counts > 0) & (np.arange(vocab) > EOS_ID)
    vectors[mean] = (sums[mean] / counts[mean, None]).astype(np.float32)
    return vectors, whole | mean, whole


def initialize_embeddings(tables, tokenizer, own_texts, config, normalize=None):
    """Writes word vectors into each embedding variable of `tables` (pieces without one keep
    their init), as the config's `word_vectors` says: a path, the pretrained vectors of that
    file (see the module docstring; `own_texts`, the training split, gives the words a piece
    occurs in); `true`, skip-gram vectors learned from the unlabeled English of
    `word_vector_corpora` plus `own_texts`, with the `word_vector_*` keys.

    Returns the metrics to log (pieces that got a vector, the coverage of the vocabulary, and
    what the vectors came from), or None when `word_vectors` is off and nothing was changed.
    """
    source = config.get("word_vectors")
    if not source:
        return None
    if isinstance(source, str):
        keyed = load_vectors_file(source)
        for table in tables:
            if table.shape[1] != keyed.vector_size:
                raise ValueError(f"key 'word_vectors': {source} has {keyed.vector_size}-"
                                 f"dimensional vectors, the embedding {table.shape[1]} (set "
                                 f"the model's embedding size to {keyed.vector_size})")
        vectors, found, whole = file_piece_vectors(tokenizer, keyed, list(own_texts), normalize)
        metrics = {"word_vector_file_words": len(keyed.key_to_index),
                   "word_vector_whole_words": int(whole.sum())}
    else:
        texts = unlabeled_english(config["word_vector_corpora"], config["word_vector_limit"])
        texts += list(own_texts)
        vectors, found = train_piece_vectors(
            tokenizer, texts, config["embedding_dim"], normalize=normalize,
            window=config["word_vector_window"], epochs=config["word_vector_epochs"],
            seed=config["seed"])
        metrics = {"word_vector_texts": len(texts)}
    for table in tables:
        table.assign(np.where(found[:, None], vectors, table.numpy()))
    return metrics | {"word_vector_pieces": int(found.sum()),
                      "word_vector_coverage": float(found.mean())}


def embedding_tables(model, vocab_size):
    """The embedding variables of `model` over a `vocab_size` vocabulary (every
    `keras.layers.Embedding` of its encoders and decoders)."""
    return [weight for weight in model.weights
            if weight.path.endswith("embeddings") and weight.shape[0] == vocab_size]
