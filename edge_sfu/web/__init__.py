"""Web assets of the SFU: the browser client and the join page (``static/``)."""
