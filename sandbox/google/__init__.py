"""Local Google emulator: Gmail v1, Calendar v3, batch and OAuth2, for the real googleapiclient."""

from sandbox.google.emulator import GoogleEmulator, LoggedRequest

__all__ = ["GoogleEmulator", "LoggedRequest"]
