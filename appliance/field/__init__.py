"""The field role: a camera unit that streams to a hub from start-up and never gives up."""
