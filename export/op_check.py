"""Will stock TF Serving run this SavedModel? Every op of the graph, checked against what
`tensorflow_model_server` links.

Stock TF Serving (2.20+) registers:

* TensorFlow's core ops. We take them to be the ops registered in a fresh Python process after
  `import tensorflow` alone (`TF_GetAllOpList`), minus anything that tensorflow-text registers
  (in case a plugin loaded it anyway) and minus the ops whose kernels live in the Python runtime
  (`PyFunc`, `EagerPyFunc`, ...: registered by the C++ core, but a C++ server cannot run them).
  This assumes the server is built from the same TensorFlow release as the exporter (use the
  matching `tensorflow/serving` image; ops added in a newer TensorFlow are not in an older server).
* tensorflow-text's `ops_lib` (linked by `tensorflow_serving/model_servers/BUILD` since 2.2): the
  op names are kept in `tf_text_ops_lib.json` next to this file, with their sources. Ops that
  need a newer server than the target version (serving#2267: `TFText>RoundRobinTrim` and
  `utf8_binarize` are missing before 2.20) fail the check too.

The graph's ops are those of the main GraphDef and of every function in its function library;
function calls (op types naming a library function, and `func` attributes such as a While's
`body`) are followed and must resolve to a function in the library.

    python -m export.op_check export/luong_translator/3        # check one version
    python -m export.op_check --regenerate-tf-text-ops           # rebuild the data file
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from serving.versions import read_saved_model

TF_TEXT_OPS_FILE = Path(__file__).resolve().parent / "tf_text_ops_lib.json"
DEFAULT_TF_SERVING_VERSION = "2.20"

# Registered by the C++ core (script_ops.cc) but executed by Python callbacks: a SavedModel that
# uses them loads in TF Serving and fails on the first request.
PYTHON_ONLY_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


class OpCheckError(ValueError):
    """The SavedModel uses ops stock TF Serving does not have (or unresolved function calls)."""


@dataclasses.dataclass
class OpCheckReport:
    path: str
    tf_serving_version: str
    ops: dict  # op name -> sorted list of places ("graph" or a function name) using it
    functions: int
    core_ops: list
    tf_text_ops: list
    problems: list

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        lines = [(f"{self.path}: {len(self.ops)} op types in the graph and {self.functions} "
                  f"library functions; {len(self.core_ops)} TensorFlow core, "
                  f"{len(self.tf_text_ops)} tensorflow-text ops_lib "
                  f"({', '.join(self.tf_text_ops) or 'none'}) -- stock TF Serving "
                  f">= {self.tf_serving_version}: {'OK' if self.ok else 'NOT OK'}")]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


# --------------------------------------------------------------------------- graph ops

def _called_functions(node):
    """Names of the library functions a NodeDef refers to through its attributes."""
    for value in node.attr.values():
        kind = value.WhichOneof("value")
        if kind == "func":
            yield value.func.name
        elif kind == "list":
            yield from (f.name for f in value.list.func)


def graph_ops(path):
    """`({op: sorted places}, number of library functions, [unresolved call problems])` over
    every MetaGraph of the SavedModel at `path`: its GraphDef and its whole function library.
    Calls to library functions are followed, not counted as ops."""
    proto = read_saved_model(path)
    places = defaultdict(set)
    unresolved = set()
    functions = 0
    for meta_graph in proto.meta_graphs:
        functions += _collect_ops(meta_graph.graph_def, places, unresolved)
    problems = [f"function '{name}' called from {where} is not in the function library"
                for name, where in sorted(unresolved)]
    return {op: sorted(where) for op, where in sorted(places.items())}, functions, problems


def _collect_ops(graph, places, unresolved):
    """Adds the ops of `graph` and of its function library to `places`; returns the number of
    library functions."""
    library = {f.signature.name: f for f in graph.library.function}
    seen = set()
    stack = [("graph", graph.node)] + [(name, None) for name in library]
    while stack:  # iterative: a deep chain of nested functions cannot hit the recursion limit
        where, nodes = stack.pop()
        if nodes is None:
            if where in seen:
                continue
            seen.add(where)
            nodes = library[where].node_def
        for node in nodes:
            if node.op in library:  # a direct call of a library function
                stack.append((node.op, None))
            else:
                places[node.op].add(where)
            for name in _called_functions(node):
                if name in library:
                    stack.append((name, None))
                else:
                    unresolved.add((name, where))
    return len(library)


# --------------------------------------------------------------------------- allowed ops

_CORE_OPS_SCRIPT = r"""
import json, sys
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow_text", "keras_nlp",
                                                              "keras_hub", "tensorflow_io"))
ops = op_def_pb2.OpList()
ops.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
print(json.dumps({"tensorflow": tf.__version__, "other_op_packages": loaded,
                  "ops": sorted(op.name for op in ops.op)}))
"""


@functools.lru_cache(maxsize=1)
def tensorflow_core_ops() -> frozenset:
    """Ops registered by `import tensorflow` alone, read in a fresh interpreter (this process
    has probably imported tensorflow-text already, whose ops must not count as core)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSTARTUP",)}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run([sys.executable, "-c", _CORE_OPS_SCRIPT], capture_output=True,
                            text=True, env=env, cwd=Path(__file__).resolve().parent.parent,
                            timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"listing TensorFlow's core ops failed: {result.stderr[-2000:]}")
    info = json.loads(result.stdout.strip().splitlines()[-1])
    if info["other_op_packages"]:
        raise RuntimeError("`import tensorflow` also imported "
                           f"{info['other_op_packages']}: cannot tell core ops from theirs")
    return frozenset(info["ops"]) - PYTHON_ONLY_OPS - frozenset(tf_text_ops_lib()["ops"])


def _version(text):
    return tuple(int(part) for part in str(text).split(".")[:2])


@functools.lru_cache(maxsize=1)
def tf_text_ops_lib() -> dict:
    """`{"ops": {op: min TF Serving version}, "libraries": {...}}` from tf_text_ops_lib.json."""
    data = json.loads(TF_TEXT_OPS_FILE.read_text())
    ops = {}
    for library in data["libraries"].values():
        for op in library["ops"]:
            ops[op] = library.get("min_tf_serving", data["min_tf_serving"])
    return {"ops": ops, "libraries": data["libraries"]}


# --------------------------------------------------------------------------- the check

def check_saved_model(path, tf_serving_version=DEFAULT_TF_SERVING_VERSION, raise_error=True):
    """Checks that stock TF Serving >= `tf_serving_version` has every op the SavedModel at
    `path` uses. Returns an `OpCheckReport`; raises `OpCheckError` naming the missing ops (and
    where they are used) unless `raise_error=False`."""
    ops, functions, problems = graph_ops(path)
    core = tensorflow_core_ops()
    text_ops = tf_text_ops_lib()["ops"]
    core_used, text_used = [], []
    for op, where in ops.items():
        shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        if op in core:
            core_used.append(op)
        elif op in text_ops:
            text_used.append(op)
            if _version(tf_serving_version) < _version(text_ops[op]):
                problems.append(f"op '{op}' (tensorflow-text) needs TF Serving >= "
                                f"{text_ops[op]} (used in {shown}); serving#2267")
        elif op in PYTHON_ONLY_OPS:
            problems.append(f"op '{op}' runs a Python function: not available in TF Serving "
                            f"(used in {shown})")
        else:
            problems.append(f"op '{op}' is neither a TensorFlow core op nor in tensorflow-text's "
                            f"ops_lib: not available in stock TF Serving (used in {shown})")
    report = OpCheckReport(str(path), str(tf_serving_version), ops, functions, core_used,
                           text_used, problems)
    if problems and raise_error:
        raise OpCheckError(report.summary())
    return report


# --------------------------------------------------------------------------- data file

_LIBRARY_OPS_SCRIPT = r"""
import json, sys
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api
handle = c_api.TF_LoadLibrary(sys.argv[1])
ops = op_def_pb2.OpList()
ops.ParseFromString(c_api.TF_GetOpList(handle))
print(json.dumps(sorted(op.name for op in ops.op)))
"""


def regenerate_tf_text_ops(path=TF_TEXT_OPS_FILE):
    """Re-reads the op names of each `ops_lib` library from the installed tensorflow-text wheel
    (`tensorflow_text/python/*/_<library>.so`, one fresh process per library so that no library
    sees another's ops as already registered) and rewrites the data file, keeping its sources,
    notes and per-library minimum versions."""
    import importlib.util

    data = json.loads(Path(path).read_text())
    spec = importlib.util.find_spec("tensorflow_text")
    root = Path(spec.origin).parent
    from importlib.metadata import version

    data["op_names_read_from"] = f"tensorflow-text {version('tensorflow-text')} wheel"
    for name, library in data["libraries"].items():
        if library.get("source") == "op definition file":
            continue  # not in the pip wheel: names kept from the cited source
        found = sorted(root.glob(f"python/*/_{name}.so"))
        if not found:
            raise FileNotFoundError(f"_{name}.so not in {root}")
        result = subprocess.run([sys.executable, "-c", _LIBRARY_OPS_SCRIPT, str(found[0])],
                                capture_output=True, text=True, check=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        library["ops"] = json.loads(result.stdout.strip().splitlines()[-1])
        library["file"] = str(found[0].relative_to(root.parent))
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="SavedModel directories")
    parser.add_argument("--tf-serving-version", default=DEFAULT_TF_SERVING_VERSION)
    parser.add_argument("--list", action="store_true", help="print every op and where it is used")
    parser.add_argument("--regenerate-tf-text-ops", action="store_true")
    args = parser.parse_args(argv)
    if args.regenerate_tf_text_ops:
        data = regenerate_tf_text_ops()
        print(f"wrote {TF_TEXT_OPS_FILE}: "
              f"{sum(len(lib['ops']) for lib in data['libraries'].values())} ops")
    status = 0
    for path in args.paths:
        report = check_saved_model(path, args.tf_serving_version, raise_error=False)
        print(report.summary())
        if args.list:
            for op, where in report.ops.items():
                print(f"    {op}: {', '.join(where)}")
        status = status or (0 if report.ok else 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
