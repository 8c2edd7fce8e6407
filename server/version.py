"""The server's version, as installed."""

from importlib.metadata import PackageNotFoundError, version

try:
    SERVER_VERSION = version("backups-api")
except PackageNotFoundError:  # running from a source tree that was never installed
    SERVER_VERSION = "0.0.0+source"
