"""Truthful `grpc.health.v1` for the model server (see `HealthReporter`)."""

from __future__ import annotations

import threading

from grpc_health.v1 import health, health_pb2

from serving.model_manager import ModelManager

SERVICES = ("tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")


class HealthReporter:
    """Keeps `grpc.health.v1` truthful: a model's name is SERVING while it has an AVAILABLE
    version; the server as a whole (service `""` and TF Serving's services) is SERVING only
    while every configured model is. Updated after every repository poll; answered by the
    health servicer from memory, so a health check never waits for a model."""

    def __init__(self, servicer: health.HealthServicer, manager: ModelManager):
        self.servicer = servicer
        self.manager = manager
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def update(self) -> None:
        serving, not_serving = (health_pb2.HealthCheckResponse.SERVING,
                                health_pb2.HealthCheckResponse.NOT_SERVING)
        availability = self.manager.availability()
        with self._lock:
            for name in self._known - set(availability):  # removed from the configuration
                self.servicer.set(name, not_serving)
            for name, available in availability.items():
                self.servicer.set(name, serving if available else not_serving)
            self._known = set(availability)
            overall = serving if availability and all(availability.values()) else not_serving
            for service in ("", *SERVICES):
                self.servicer.set(service, overall)
