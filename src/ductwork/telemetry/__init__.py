"""Adapters of the telemetry port (``ductwork.core.telemetry``): Prometheus metrics, StatsD,
OpenTelemetry traces; ``setup.build_telemetry`` picks them from the settings. Each library is
an optional extra, imported only when its adapter is built."""
