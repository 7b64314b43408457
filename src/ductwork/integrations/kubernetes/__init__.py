"""Kubernetes pods (``pip install 'ductwork[kubernetes]'``): ``KubernetesPodOperator``."""

from ductwork.integrations.kubernetes.operators import KubernetesPodOperator, label_value, pod_name

__all__ = ["KubernetesPodOperator", "label_value", "pod_name"]
