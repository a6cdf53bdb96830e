"""Dataset readers. Files are found through `$ZOO_DATA_DIR`; nothing is downloaded."""

from zoo.data.dates import generate_dates
from zoo.data.errors import DataDirError, DataError
from zoo.data.multi30k import read_multi30k
from zoo.data.parallel import read_parallel
from zoo.data.paths import data_dir

__all__ = ["DataDirError", "DataError", "data_dir", "generate_dates", "read_multi30k",
           "read_parallel"]
