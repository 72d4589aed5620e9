"""The booking core of clinic-dm: schedules, availability, bookings, patients.

No Rasa imports here: the action server, the CLI and the reminder job all use it.
"""
