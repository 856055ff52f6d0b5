"""Configuration: one frozen, typed :class:`Settings` built once by :func:`load_settings`."""

from etl.config.loading import load_settings
from etl.config.settings import (
    DEFAULT_CONFIG_PATH,
    DaemonSettings,
    DatabaseSettings,
    DriftPolicy,
    JobSettings,
    LogFormat,
    LogSettings,
    RetrySettings,
    Settings,
    SyncSettings,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DaemonSettings",
    "DatabaseSettings",
    "DriftPolicy",
    "JobSettings",
    "LogFormat",
    "LogSettings",
    "RetrySettings",
    "Settings",
    "SyncSettings",
    "load_settings",
]
