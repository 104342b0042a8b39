"""Physics of each sensor family, shared by the simulator (to generate) and the tracker (to weigh).

One module per family: what the sensor measures, how its noise and detection probability depend on the
geometry and the signal-to-noise ratio.
"""
