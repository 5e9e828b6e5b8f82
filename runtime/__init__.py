"""slmkit.runtime: the routing runtime shared by the simulator, the server and the mobile ports.

It never imports torch or transformers, so it starts fast and mirrors what runs on devices.
"""
