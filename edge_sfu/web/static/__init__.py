"""The browser client (edge-video.js) and the join page, served by ``edge_sfu.signaling``."""
