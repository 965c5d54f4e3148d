"""A local, faithful stand-in for the OpenPhone v1 API and its signed webhooks, with fault injection.

It plays the provider in tests and demos, so it deliberately shares no code with
openphone_pipelines or webhook_receiver.
"""

from .config import FaultConfig, SandboxConfig
from .state import Sandbox

__all__ = ["FaultConfig", "Sandbox", "SandboxConfig"]
