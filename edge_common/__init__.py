"""Small pieces every package of edge-appliance shares.

The architecture keeps ``edge_sfu``, ``hardware`` and ``provisioning`` independent of each
other; the few helpers all of them need (atomic files, the thread-to-loop bridge, close-once
and task lifetimes) live here rather than being copied three times. This package imports
nothing of the project.
"""
