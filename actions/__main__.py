"""`python -m actions`: the action server (see actions/server.py)."""

from actions.server import main

if __name__ == "__main__":  # rasa_sdk imports every module of the package
    main()
