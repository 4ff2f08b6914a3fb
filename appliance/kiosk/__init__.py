"""The kiosk role: a meeting-room unit that joins its room when someone presses a button."""
