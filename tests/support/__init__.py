"""What tests of every tier share: waiting, a running SFU, the daemon, Chromium, notify."""
