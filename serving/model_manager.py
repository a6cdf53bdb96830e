"""The server's model manager: loading the SavedModel versions of the served model repository,
version policies, labels and polling (the repository itself is written by `export`).

Layout (TF Serving's): `<base_path>/<integer version>/saved_model.pb` + `variables/`.
Three ways to say what to serve, as in `tensorflow_model_server`:

* a repository root: every sub-directory holding integer version directories is a model, and
  its latest version is served; new model directories are picked up while polling;
* a `models.config` (text-format `ModelServerConfig`): version policies `latest`/`all`/
  `specific` and `version_labels`; the file is re-read when it changes;
* one model: `model_name` + `model_base_path`.

The `ModelManager` polls every `poll_interval` seconds. A new version is loaded off the
request path and swapped in atomically; a retired one is only dropped from the table, so requests
already holding it finish normally. As TF Serving's `AvailabilityPreservingPolicy` it never
unloads a model's last loaded version because files went missing: a vanished version directory
or base path is logged and the version keeps serving from memory (GetModelStatus says so). A
version that fails to load (corrupt, half written) is logged, reported by GetModelStatus as END
with the error, and retried `max_num_load_retries` times `load_retry_interval` seconds apart
(TF Serving's `--max_num_load_retries`/`--load_retry_interval_micros`), and again whenever
its files change; the versions already serving stay. Unless it is found at start-up or with a
new model, a version must look the same on two consecutive polls before it is loaded, so a
directory still being written is not picked up half-way. Directory names that are not decimal
integers are ignored (`serving.versions`); errors in one model never stop the others.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving import warmup
from serving.tensors import ServingError, invalid, not_found
from serving.versions import read_saved_model, version_dirs

log = logging.getLogger("serving")

State = get_model_status_pb2.ModelVersionStatus.State
DEFAULT_SIGNATURE = "serving_default"
_INIT_OP_SIGNATURE = "__saved_model_init_op"
EXPORT_METADATA = Path("assets.extra") / "zoo_export.json"  # written by export.saved_model
# TF Serving's defaults for --max_num_load_retries and --load_retry_interval_micros.
DEFAULT_MAX_NUM_LOAD_RETRIES = 5
DEFAULT_LOAD_RETRY_INTERVAL = 60.0


# --------------------------------------------------------------------------- servable

def read_signature_defs(path: str | os.PathLike) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the `serve` MetaGraph in `path` (as TF Serving reports them)."""
    saved = read_saved_model(path)
    for meta_graph in saved.meta_graphs:
        if not meta_graph.meta_info_def.tags or "serve" in meta_graph.meta_info_def.tags:
            return {k: v for k, v in meta_graph.signature_def.items() if k != _INIT_OP_SIGNATURE}
    raise ValueError(f"no MetaGraph tagged 'serve' in {path}")


_custom_ops_registered = False


def register_custom_ops() -> None:
    """Imports tensorflow-text (if installed) so SavedModels using its ops load, as in the
    stock `tensorflow_model_server`, which links tf-text's op library."""
    global _custom_ops_registered
    if _custom_ops_registered:
        return
    _custom_ops_registered = True
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:  # pragma: no cover - tensorflow-text is a dependency
        log.debug("tensorflow-text not installed: its ops are not available")


class Servable:
    """One loaded SavedModel version."""

    def __init__(self, name: str, version: int, path: str | os.PathLike):
        register_custom_ops()
        self.name = name
        self.version = int(version)
        self.path = Path(path)
        self.signature_defs = read_signature_defs(self.path)
        self._loaded = tf.saved_model.load(os.fspath(self.path), tags=["serve"])
        self._functions = dict(self._loaded.signatures)
        self.limits = read_export_limits(self.path)
        missing = set(self.signature_defs) - set(self._functions)
        if missing:  # pragma: no cover - TF1 graphs without functions
            raise ValueError(f"signatures {sorted(missing)} cannot be called from Python")

    def __repr__(self) -> str:
        return f"Servable({self.name!r}, {self.version})"

    def signature(self, name: str, api: str = "Predict") -> meta_graph_pb2.SignatureDef:
        """The SignatureDef `name`; a missing one fails as TF Serving's `api` fails it:
        FAILED_PRECONDITION for Predict (`predict_util.cc`), INVALID_ARGUMENT for Classify
        and Regress (`classifier.cc`, `regressor.cc`)."""
        name = name or DEFAULT_SIGNATURE
        if name in self.signature_defs:
            return self.signature_defs[name]
        available = f" (model '{self.name}' version {self.version} has: " \
                    f"{', '.join(sorted(self.signature_defs))})"
        if api == "Predict":
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"Serving signature key \"{name}\" not found.{available}")
        raise invalid(f"No signature was found with the name: {name}{available}")

    def run(self, signature_name: str, inputs: dict[str, np.ndarray],
            output_keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Calls a signature with numpy inputs; returns numpy outputs (all, or `output_keys`)."""
        function = self._functions[signature_name or DEFAULT_SIGNATURE]
        try:
            outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as error:
            code = _TF_TO_GRPC.get(error.error_code, grpc.StatusCode.INTERNAL)
            raise ServingError(code, _short(error.message)) from None
        except (TypeError, ValueError) as error:
            raise invalid(_short(str(error))) from None
        keys = list(outputs) if output_keys is None else list(output_keys)
        return {k: outputs[k].numpy() for k in keys}


_TF_TO_GRPC = {code.value[0]: code for code in grpc.StatusCode}


def read_export_limits(path: str | os.PathLike) -> dict:
    """The `limits` an export recorded (`max_source_tokens`, ...), `{}` if none."""
    try:
        metadata = json.loads((Path(path) / EXPORT_METADATA).read_text())
    except (OSError, ValueError):
        return {}
    limits = metadata.get("limits") if isinstance(metadata, dict) else None
    return limits if isinstance(limits, dict) else {}


def _short(message: str, limit: int = 600) -> str:
    message = message.strip()
    return message if len(message) <= limit else message[:limit] + " ..."


# --------------------------------------------------------------------------- config

@dataclasses.dataclass
class Policy:
    """A version policy: `latest` (`num_versions`), `all` or `specific` (`versions`)."""

    kind: str = "latest"
    num_versions: int = 1
    versions: frozenset[int] = frozenset()

    @classmethod
    def from_proto(cls, policy) -> Policy:
        which = policy.WhichOneof("policy_choice")
        if which == "all":
            return cls("all")
        if which == "specific":
            if not policy.specific.versions:
                raise invalid("specific version policy needs at least one version")
            return cls("specific", versions=frozenset(int(v) for v in policy.specific.versions))
        if which == "latest" and policy.latest.num_versions < 0:
            raise invalid("latest version policy: num_versions must be positive")
        num = policy.latest.num_versions if which == "latest" else 0
        return cls("latest", num_versions=num or 1)

    def select(self, versions: Iterable[int]) -> set[int]:
        versions = set(versions)
        if self.kind == "all":
            return versions
        if self.kind == "specific":
            return versions & self.versions
        return set(sorted(versions)[-self.num_versions:])


@dataclasses.dataclass
class ModelSpecConfig:
    name: str
    base_path: Path
    policy: Policy = dataclasses.field(default_factory=Policy)
    labels: dict[str, int] = dataclasses.field(default_factory=dict)


def parse_model_server_config(text: str, config_dir: str | os.PathLike | None = None
                              ) -> list[ModelSpecConfig]:
    """Parses text-format `ModelServerConfig` into model specs (`configs_from_proto`)."""
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise invalid(f"cannot parse model server config: {error}") from None
    return configs_from_proto(config, config_dir)


def configs_from_proto(config: model_server_config_pb2.ModelServerConfig,
                       config_dir: str | os.PathLike | None = None) -> list[ModelSpecConfig]:
    """Checks a `ModelServerConfig` and resolves its base paths.

    A relative `base_path` is taken relative to `config_dir` (the config file's directory).
    A base path that does not exist while `<config_dir>/<model name>` does is mapped there, so
    a `models.config` written for the docker image (`/models/<name>`) also works locally.
    """
    if config.HasField("custom_model_config"):
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED, "custom_model_config is not supported")
    specs, seen = [], set()
    for model in config.model_config_list.config:
        if not model.name:
            raise invalid("model config without a name")
        if model.name in seen:
            raise invalid(f"model name '{model.name}' appears more than once in the config")
        seen.add(model.name)
        if not model.base_path:
            raise invalid(f"model '{model.name}': base_path is empty")
        if model.model_platform not in ("", "tensorflow"):
            raise invalid(f"model '{model.name}': unsupported model_platform "
                          f"'{model.model_platform}' (only 'tensorflow')")
        base = Path(model.base_path)
        if config_dir is not None:
            config_dir = Path(config_dir)
            if not base.is_absolute():
                base = config_dir / base
            elif not base.exists() and (config_dir / model.name).is_dir():
                log.info("model '%s': base_path %s not found, using %s", model.name, base,
                         config_dir / model.name)
                base = config_dir / model.name
        policy = Policy.from_proto(model.model_version_policy)
        labels = {k: int(v) for k, v in model.version_labels.items()}
        specs.append(ModelSpecConfig(model.name, base, policy, labels))
    return specs


# --------------------------------------------------------------------------- manager

def list_versions(base_path: Path) -> dict[int, Path]:
    """`{version: path}` under `base_path`; names that are not versions are skipped."""
    return version_dirs(base_path)


def _fingerprint(path: Path) -> tuple:
    """Names, sizes and modification times of every file under `path`."""
    items = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            items.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    return tuple(items)


@dataclasses.dataclass
class _VersionStatus:
    state: int
    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""


@dataclasses.dataclass
class _Failure:
    """A version that failed to load: with these files, `attempts` times so far."""

    fingerprint: tuple
    attempts: int
    retry_at: float  # time.monotonic() of the next try (inf: only when its files change)


class _Model:
    def __init__(self, spec: ModelSpecConfig):
        self.spec = spec
        self.servables: dict[int, Servable] = {}
        self.status: dict[int, _VersionStatus] = {}
        self.failed: dict[int, _Failure] = {}
        self.seen: dict[int, tuple] = {}  # version -> fingerprint at the previous poll
        self.missing_reported: set = set()  # what vanished from disk, logged once each


Loader = Callable[[str, int, Path], Servable]


class ModelManager:
    """Keeps the served versions in step with the repository; thread safe.

    Args:
        model_root: repository root: every sub-directory with version directories is a model.
        model_config_file: a text-format `ModelServerConfig` (re-read when it changes).
        model_name, model_base_path: a single model.
        poll_interval: seconds between polls of the file system (`<= 0`: no polling).
        loader: builds a `Servable` (tests inject failures through it).
        warmup: replay `assets.extra/tf_serving_warmup_requests` before a version serves.
        max_num_load_retries, load_retry_interval: a version that failed to load is tried
            again that many times, that many seconds apart (TF Serving's flags and defaults).
        on_change: called after every poll (health reporting).
        reload_roots: directories a ReloadConfig request's base paths must lie in (after
            resolving `..` and symbolic links); default: the served repository (the root,
            the config file's directory, or the single model's parent directory).
    """

    def __init__(self, *, model_root=None, model_config_file=None, model_name=None,
                 model_base_path=None, poll_interval: float = 1.0,
                 loader: Loader = Servable, warmup: bool = True,
                 max_num_load_retries: int = DEFAULT_MAX_NUM_LOAD_RETRIES,
                 load_retry_interval: float = DEFAULT_LOAD_RETRY_INTERVAL,
                 on_change: Callable[[], None] | None = None,
                 reload_roots: Iterable[str | os.PathLike] | None = None):
        given = [model_root is not None, model_config_file is not None,
                 model_base_path is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of model_root, model_config_file or "
                             "model_base_path (with model_name)")
        self.model_root = Path(model_root) if model_root is not None else None
        self.model_config_file = Path(model_config_file) if model_config_file else None
        self.poll_interval = poll_interval
        self._loader = loader
        self.warmup = warmup
        self.max_num_load_retries = max_num_load_retries
        self.load_retry_interval = load_retry_interval
        self.on_change = on_change
        if reload_roots is None:
            reload_roots = [p for p in (model_root,
                                        self.model_config_file.parent
                                        if self.model_config_file else None,
                                        Path(model_base_path).parent
                                        if model_base_path is not None else None)
                            if p is not None]
        self.reload_roots = [Path(r).resolve() for r in reload_roots]
        self._lock = threading.RLock()  # guards self._models (the table requests read)
        self._poll_lock = threading.Lock()  # one poll at a time
        self._models: dict[str, _Model] = {}
        self._config_mtime: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False  # after the first poll, new versions must look stable
        if model_base_path is not None:
            name = model_name or "default"
            self._set_specs([ModelSpecConfig(name, Path(model_base_path))])
        elif self.model_config_file is not None:
            self._read_config_file(force=True)

    # -- configuration
    def _set_specs(self, specs: list[ModelSpecConfig]) -> None:
        with self._lock:
            models = {}
            for spec in specs:
                model = self._models.get(spec.name)
                if model is not None and model.spec.base_path == spec.base_path:
                    model.spec = spec
                else:
                    model = _Model(spec)
                models[spec.name] = model
            for name in set(self._models) - set(models):
                log.info("model '%s' removed from the configuration: unloading", name)
            self._models = models

    def _read_config_file(self, force: bool = False) -> None:
        path = self.model_config_file
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            if force:
                raise
            return
        if not force and mtime == self._config_mtime:
            return
        self._config_mtime = mtime  # a bad edit is reported once, not at every poll
        specs = parse_model_server_config(path.read_text(), path.parent)
        if not force:
            log.info("model config %s changed: reloading", path)
        self._set_specs(specs)

    def _scan_root(self) -> None:
        root = self.model_root
        specs = []
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except FileNotFoundError:
            entries = []
        for entry in entries:
            try:
                is_model = (entry.is_dir() and not entry.name.startswith(".")
                            and list_versions(Path(entry.path)))
            except OSError:
                is_model = False
            if is_model:
                model = self._models.get(entry.name)
                spec = model.spec if model else ModelSpecConfig(entry.name, Path(entry.path))
                specs.append(spec)
        names = {spec.name for spec in specs}
        for name, model in self._models.items():
            # Availability preserving: a model whose directory vanished keeps serving what it
            # has loaded (its poll logs the missing base path).
            if name not in names and model.servables:
                specs.append(model.spec)
        specs.sort(key=lambda spec: spec.name)
        if [s.name for s in specs] != sorted(self._models):
            self._set_specs(specs)

    def reload_config(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """HandleReloadConfigRequest: serve exactly the models of `config` and poll once."""
        specs = configs_from_proto(config, self.model_config_file.parent
                                   if self.model_config_file else self.model_root)
        self._check_reload_paths(specs)
        with self._poll_lock:
            self.model_root = None  # the config now says what to serve
            self._set_specs(specs)
            self._poll_locked(immediate=True)
        self._changed()

    def _check_reload_paths(self, specs: list[ModelSpecConfig]) -> None:
        """PERMISSION_DENIED unless every base path lies inside `reload_roots`: loading a
        SavedModel runs its ops, so a client must not point the server at files of its choice."""
        for spec in specs:
            path = spec.base_path.resolve()
            if not any(path == root or path.is_relative_to(root) for root in self.reload_roots):
                allowed = ", ".join(str(r) for r in self.reload_roots) or "(none)"
                raise ServingError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"model '{spec.name}': base_path {spec.base_path} is outside the "
                    f"directories this server may load from ({allowed}; "
                    f"--model_base_path_prefix)")

    # -- polling
    def poll(self) -> None:
        """One pass over the repository: load new versions, unload retired ones."""
        with self._poll_lock:
            if self.model_config_file is not None and self.model_root is None:
                try:
                    self._read_config_file()
                except Exception as error:  # noqa: BLE001 - bad edit: keep serving the previous config
                    log.error("cannot reload model config %s: %s", self.model_config_file, error)
            if self.model_root is not None:
                try:
                    self._scan_root()
                except Exception:  # keep polling the models already known
                    log.exception("cannot scan the model repository %s", self.model_root)
            self._poll_locked()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # reporting must not stop polling
                log.exception("on_change callback failed")

    def _poll_locked(self, immediate: bool = False) -> None:
        with self._lock:
            models = list(self._models.values())
        immediate = immediate or not self._started
        for model in models:
            try:
                self._poll_model(model, immediate)
            except Exception:  # never let one model stop the polling of the others
                log.exception("error while polling model '%s'", model.spec.name)
        self._started = True

    def _poll_model(self, model: _Model, immediate: bool) -> None:
        spec = model.spec
        if not spec.base_path.is_dir():
            # TF Serving's file-system source skips a poll whose base path is missing: nothing
            # is loaded or unloaded until it is back.
            self._report_missing(model, "base", f"base path {spec.base_path} is missing")
            return
        model.missing_reported.discard("base")
        on_disk = list_versions(spec.base_path)
        prints = {v: _fingerprint(p) for v, p in on_disk.items()}
        now = time.monotonic()
        for version in list(model.failed):
            if prints.get(version) != model.failed[version].fingerprint:
                del model.failed[version]  # files changed (or gone): a fresh start
        candidates = {v for v in on_disk
                      if v not in model.failed or model.failed[v].retry_at <= now}
        while True:
            wanted = spec.policy.select(candidates)
            to_load = sorted(wanted - set(model.servables), reverse=True)
            progress = False
            for version in to_load:
                stable = prints[version] == model.seen.get(version)
                if not immediate and not stable and version not in model.failed:
                    continue  # still being written? look again at the next poll
                if not self._load(model, version, on_disk[version], prints[version]):
                    candidates.discard(version)
                    progress = True
                    break
            if not progress:
                break
        model.seen = prints
        loaded = set(model.servables)
        # Versions waiting for a retry still count as wanted: the previous one keeps serving.
        wanted = spec.policy.select(candidates | {v for v, f in model.failed.items()
                                                  if f.retry_at < math.inf})
        keep = wanted & loaded
        if not wanted <= loaded:  # a wanted version is not ready: keep serving the best we have
            keep |= spec.policy.select(loaded & set(on_disk))
        if loaded and not keep:
            # AvailabilityPreservingPolicy: never unload the last loaded version(s) because
            # their files went away; keep the newest and say so.
            keep = {max(loaded)}
        for version in sorted(keep - set(on_disk)):
            self._report_missing(model, version, f"version {version} directory is gone; "
                                 "still serving it from memory")
        for version in sorted(loaded - keep):
            self._unload(model, version)

    def _report_missing(self, model: _Model, key, message: str) -> None:
        if key not in model.missing_reported:
            model.missing_reported.add(key)
            log.warning("model '%s': %s", model.spec.name, message)
        if isinstance(key, int):
            with self._lock:
                status = model.status.get(key)
                if status is not None and status.state == State.AVAILABLE:
                    status.message = message

    def _load(self, model: _Model, version: int, path: Path, fingerprint: tuple) -> bool:
        name = model.spec.name
        if not (path / "saved_model.pb").exists() and not (path / "saved_model.pbtxt").exists():
            # Half written (or not a SavedModel): not a version yet, so no status row; looked
            # at again when its files change.
            if version not in model.failed:
                log.warning("model '%s' version %d: no saved_model.pb in %s; skipped",
                            name, version, path)
            model.failed[version] = _Failure(fingerprint, 0, math.inf)
            return False
        with self._lock:
            model.status[version] = _VersionStatus(State.LOADING)
        started = time.monotonic()
        try:
            servable = self._loader(name, version, path)
            if self.warmup:
                warmup.replay(servable)
        except Exception as error:  # noqa: BLE001 - any load failure skips the version
            self._failed(model, version, fingerprint,
                         f"failed to load {path}: {_short(str(error), 300)}")
            return False
        with self._lock:
            model.servables[version] = servable
            model.status[version] = _VersionStatus(State.AVAILABLE)
        model.failed.pop(version, None)
        log.info("model '%s' version %d loaded from %s in %.2fs", name, version, path,
                 time.monotonic() - started)
        return True

    def _failed(self, model: _Model, version: int, fingerprint: tuple, reason: str) -> None:
        """Records a failed load and when to try again (TF Serving's retry flags)."""
        previous = model.failed.get(version)
        attempts = previous.attempts + 1 if previous else 1
        retries_left = self.max_num_load_retries + 1 - attempts
        retry_at = (time.monotonic() + self.load_retry_interval if retries_left > 0
                    else math.inf)
        model.failed[version] = _Failure(fingerprint, attempts, retry_at)
        if retries_left > 0:
            after = (f"retry {attempts} of {self.max_num_load_retries} in "
                     f"{self.load_retry_interval:g}s")
        else:
            after = "no retries left; tried again when its files change"
        log.error("model '%s' version %d: %s (%s)", model.spec.name, version, reason, after)
        with self._lock:
            model.status[version] = _VersionStatus(State.END, grpc.StatusCode.UNKNOWN,
                                                   f"{reason} ({after})")

    def _unload(self, model: _Model, version: int) -> None:
        with self._lock:
            model.servables.pop(version, None)
            model.status[version] = _VersionStatus(State.END)
        # Requests that already hold the servable keep it alive until they finish.
        log.info("model '%s' version %d unloaded", model.spec.name, version)

    def start(self) -> None:
        """Initial load (blocking), then the polling thread."""
        self.poll()
        if self.poll_interval and self.poll_interval > 0:
            self._thread = threading.Thread(target=self._run, name="serving-poll", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.poll()
            except Exception:  # pragma: no cover - poll() already logs per model
                log.exception("polling failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # -- lookups (request path)
    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable for a ModelSpec; NOT_FOUND errors word it the way TF Serving does."""
        if not name:
            raise invalid("Missing ModelSpec: model name is empty")
        with self._lock:
            model = self._models.get(name)
            if model is None:
                raise not_found(f"Servable not found for request: Latest({name})")
            if label:
                labels = model.spec.labels
                if label not in labels:
                    # TF Serving: ServerCore::GetModelVersionForLabel, INVALID_ARGUMENT.
                    raise invalid(f"Unrecognized servable version label: {label}")
                version = labels[label]
            if version is not None:
                servable = model.servables.get(version)
                if servable is None:
                    raise not_found(f"Servable not found for request: Specific({name}, {version})")
                return servable
            if not model.servables:
                raise not_found(f"Servable not found for request: Latest({name})")
            return model.servables[max(model.servables)]

    def version_status(self, name: str, version: int | None = None
                       ) -> list[tuple[int, int, grpc.StatusCode, str]]:
        """`(version, state, code, message)` rows for GetModelStatus."""
        with self._lock:
            model = self._models.get(name)
            if model is None or not model.status:
                raise not_found(f"Could not find any versions of model {name}")
            if version is not None:
                if version not in model.status:
                    raise not_found(f"Could not find version {version} of model {name}")
                rows = {version: model.status[version]}
            else:
                rows = model.status
            return [(v, s.state, s.code, s.message) for v, s in sorted(rows.items())]

    def availability(self) -> dict[str, bool]:
        """Whether each configured model has a version that can serve (health reporting)."""
        with self._lock:
            return {n: bool(m.servables) for n, m in sorted(self._models.items())}

    def loaded(self) -> dict[str, list[int]]:
        with self._lock:
            return {n: sorted(m.servables) for n, m in sorted(self._models.items())}
