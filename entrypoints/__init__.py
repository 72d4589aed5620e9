"""Processes that are not servers: the staff's command line and the reminder job.

They wire the booking core (`clinic`) to the outside world (the Graph API sender of
`connectors`), which the core itself never imports.
"""
