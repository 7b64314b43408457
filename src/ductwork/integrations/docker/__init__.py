"""Docker containers (``pip install 'ductwork[docker]'``): ``DockerOperator``."""

from ductwork.integrations.docker.operators import DockerOperator

__all__ = ["DockerOperator"]
