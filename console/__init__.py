"""The staff console: the front desk's web application, in a process of its own, on the
booking core (`clinic/`). `python -m clinic console` serves it (console/server.py)."""
