"""Camera, hardware H.264 encoders, ALSA audio, GPIO buttons and LEDs, and board detection.

Knows no WebRTC and no HTTP. Vendor libraries (picamera2, alsaaudio, gpiozero pin backends)
are imported only inside the backend that uses them, so this package imports anywhere.
"""
