"""Multi30k Task 1 (`$ZOO_DATA_DIR/mt/{train,valid,test}.tsv`, `en\\tde`, no header)."""

from zoo.data.errors import DataError
from zoo.data.lines import check_limit, iter_tsv
from zoo.data.paths import data_file

LANGUAGES = ("en", "de")


def read_multi30k(split, source_lang="de", target_lang="en", limit=None):
    """Return `(sources, targets)`: two lists of raw strings for `split` in the given direction."""
    if {source_lang, target_lang} != set(LANGUAGES):
        raise ValueError("Multi30k directions are en→de and de→en, "
                         f"got {source_lang}→{target_lang}")
    limit = check_limit(limit)
    path = data_file("mt", f"{split}.tsv")
    sources, targets = [], []
    for number, fields in iter_tsv(path, LANGUAGES, header=False):
        pair = dict(zip(LANGUAGES, fields, strict=True))
        for lang in LANGUAGES:
            if not pair[lang].strip():
                raise DataError(path, number, f"empty {lang} sentence")
        sources.append(pair[source_lang])
        targets.append(pair[target_lang])
        if limit is not None and len(sources) >= limit:
            break
    return sources, targets
