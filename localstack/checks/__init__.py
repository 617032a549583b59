"""The emulator's self-checks by area, run by ../selftest.py against a running emulator."""
