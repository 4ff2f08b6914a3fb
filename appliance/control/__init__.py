"""The local control socket: ``edge-appliance press join`` talks to the running daemon.

``protocol`` holds the commands, their wire form and the errors; ``server`` the daemon's end;
``client`` the blocking end the command line uses.
"""
