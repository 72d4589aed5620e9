"""The rasa-sdk action server: thin adapters from trackers to the `clinic` core."""
