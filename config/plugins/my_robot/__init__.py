"""An example Ferry plugin package: user components that plug in without editing Ferry.

Use it from a config with the model string ``python:my_robot.sensors:Thermometer``
(put ``config/plugins`` on ``PYTHONPATH``), or install it with an entry point in the
``ferry.components`` group; see docs/components.md.
"""
