"""`zoo cluster-local N CONFIG`: N `zoo train` processes forming a multi-worker cluster on
127.0.0.1, to try `strategy=multi_worker` on one machine.

Each process gets the `TF_CONFIG` a cluster manager would give a pod (the same worker list,
its own index; worker 0 is the chief) and trains with `--set strategy=multi_worker`. Their
output is printed line by line, prefixed `[worker i]`. When a worker fails the others stop
on their own (TensorFlow's failure detection); any still running after `grace_seconds` are
killed, and the exit status is the first failing worker's.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def free_ports(count):
    """`count` TCP ports free on 127.0.0.1 right now (all held open while choosing, so they
    differ; another program could still take one before the worker binds it)."""
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            handle.bind(("127.0.0.1", 0))
            sockets.append(handle)
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def tf_configs(count, ports=None):
    """The `TF_CONFIG` of each of `count` workers on 127.0.0.1 (JSON strings)."""
    ports = ports or free_ports(count)
    workers = [f"127.0.0.1:{port}" for port in ports]
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
            for i in range(count)]


def train_arguments(config=None, settings=(), output_dir="runs", resume=None):
    """`zoo train` arguments of every worker: a config with `strategy=multi_worker`, or
    `--resume RUN_ID` (the run's own config then says multi_worker)."""
    if (config is None) == (resume is None):
        raise ValueError("cluster-local: give a config, or --resume RUN_ID (not both)")
    if resume is not None:
        return ["--resume", resume, "--output-dir", str(output_dir)]
    settings = [f"--set={item}" for item in settings]
    return [str(config), *settings, "--set=strategy=multi_worker", "--output-dir", str(output_dir)]


def run_local_cluster(count, arguments, grace_seconds=60.0, stream=None):
    """Start `count` workers running `zoo train <arguments>`; return the cluster's exit status.

    Args:
        count: number of workers (processes).
        arguments: `zoo train` arguments (see `train_arguments`).
        grace_seconds: how long the other workers may take to stop after one failed.
        stream: where the prefixed output goes (default stdout).
    """
    if count < 1:
        raise ValueError(f"cluster-local: the number of workers must be at least 1, got {count}")
    stream = stream or sys.stdout
    lock = threading.Lock()
    processes, pumps = [], []
    for index, tf_config in enumerate(tf_configs(count)):
        environment = dict(os.environ, TF_CONFIG=tf_config, PYTHONUNBUFFERED="1")
        process = subprocess.Popen(
            [sys.executable, "-m", "zoo.cli", "train", *arguments], env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, errors="replace")
        processes.append(process)
        pump = threading.Thread(target=_pump, args=(process.stdout, f"[worker {index}] ", stream,
                                                    lock), daemon=True)
        pump.start()
        pumps.append(pump)
    try:
        status = _supervise(processes, grace_seconds, stream, lock)
    except KeyboardInterrupt:
        _stop(processes, signal.SIGINT, 10.0)
        status = 130
    for pump in pumps:
        pump.join(timeout=5)
    return status


def _pump(pipe, prefix, stream, lock):
    for line in pipe:
        with lock:
            stream.write(prefix + line)
            stream.flush()


def _supervise(processes, grace_seconds, stream, lock):
    """Wait for every worker; after the first failure give the rest `grace_seconds`."""
    failed = None
    deadline = None
    while True:
        codes = [process.poll() for process in processes]
        if failed is None:
            failed = next((i for i, code in enumerate(codes) if code not in (None, 0)), None)
            if failed is not None:
                deadline = time.monotonic() + grace_seconds
        if all(code is not None for code in codes):
            break
        if deadline is not None and time.monotonic() > deadline:
            with lock:
                stream.write(f"cluster-local: worker {failed} failed; stopping the workers "
                             f"still running after {grace_seconds:g} s\n")
            _stop(processes, signal.SIGTERM, 10.0)
            break
        time.sleep(0.2)
    if failed is None:
        return 0
    code = processes[failed].returncode
    with lock:
        stream.write(f"cluster-local: worker {failed} exited with status {code}\n")
    return code if code > 0 else 128 - code  # killed by a signal: 128 + its number


def _stop(processes, first_signal, patience):
    """`first_signal` to every running worker, SIGKILL to those alive `patience` s later (a
    process blocked in a TensorFlow collective does not run Python signal handlers)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(first_signal)
    end = time.monotonic() + patience
    for process in processes:
        try:
            process.wait(timeout=max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
