"""The hub role: the room field units stream into, its multi-view page and its recording."""
