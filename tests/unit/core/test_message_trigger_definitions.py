"""Message triggers refuse, where the flow is defined, what their listener could not use."""

from __future__ import annotations

import pytest

from ductwork.core.triggers import MqttTopic
from ductwork.errors import DefinitionError


@pytest.mark.parametrize("url", ["mqttx://127.0.0.1:1883", "mqtts://broker:8883", "127.0.0.1:1883"])
def test_an_mqtt_url_it_cannot_use_is_refused(url: str) -> None:
    """A misspelt scheme ran as plain MQTT; a TLS one would have too, unencrypted."""
    with pytest.raises(DefinitionError, match="must start with mqtt://"):
        MqttTopic(topic="a/b", url=url)


def test_mqtt_urls_it_uses_are_taken() -> None:
    assert MqttTopic(topic="a/b", url="mqtt://user:pw@127.0.0.1:1883").url.startswith("mqtt://")
    with pytest.raises(DefinitionError, match="give a topic"):
        MqttTopic(topic="")
