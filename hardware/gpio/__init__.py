"""Buttons and status LEDs through gpiozero (pin backends imported only when used)."""
