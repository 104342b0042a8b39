"""The acoustic node: multichannel audio of a small microphone array -> acoustic detections (bearing, class).

Core processing needs only numpy and scipy (a Raspberry-Pi-class computer runs it); live capture uses
``sounddevice`` and publishing uses paho-mqtt. See docs/node.md.
"""
