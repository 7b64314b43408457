"""``ductwork triggerer``: the listeners of flows' message triggers, in a process of their own."""

from __future__ import annotations

import click

from ductwork.cli.options import LOG_LEVEL
from ductwork.cli.state import CliState


@click.command()
@click.option("--log-level", type=LOG_LEVEL, default="info", show_default=True)
@click.pass_obj
def triggerer(state: CliState, log_level: str) -> None:
    """Listen for the messages that start runs (RabbitMQ, Redis Streams, NATS JetStream, MQTT)
    until stopped. Set triggerer = "separate" so that the scheduler does not listen as well."""
    from ductwork.cli.engine_state import store
    from ductwork.cli.scheduler_cmd import _configure_logging, _install_signals
    from ductwork.engine.triggerer import TriggererService

    _configure_logging(log_level)
    from ductwork.engine.services_setup import build_secrets

    engine = store(state)
    # Every flow's triggers: a separate triggerer may run where the flows folder is not (a
    # container of its own), so it cannot tell which flows a scheduler's folders hold.
    service = TriggererService(engine, secrets=build_secrets(state.settings, engine=engine))
    _install_signals(service)
    click.echo(f"Ductwork triggerer on {state.settings.db_url}. Ctrl-C to stop.", err=True)
    service.run()
