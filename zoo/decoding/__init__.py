"""Decoding strategies for sequence generators: greedy and beam search, XLA-compilable,
registered by name in `STRATEGIES`.

Example:

```python
from zoo.decoding import DecodingStrategy

strategy = DecodingStrategy.from_config({"decoding": "beam", "beam_width": 5, "n_best": 3})
result = model.beam_decode(source_ids, beam_width=5, length_penalty=0.6, n_best=3)
```
"""

from zoo.decoding.beam_search import BeamSearch, coverage_penalty, length_penalty
from zoo.decoding.greedy_search import GreedySearch
from zoo.decoding.strategy import STRATEGIES, DecodingResult, DecodingStrategy, tile_batch

__all__ = [
    "STRATEGIES",
    "BeamSearch",
    "DecodingResult",
    "DecodingStrategy",
    "GreedySearch",
    "coverage_penalty",
    "length_penalty",
    "tile_batch",
]
