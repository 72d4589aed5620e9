"""The intent sets the forms and the dialogue rules share, defined once.

data/rules.yml spells them out (Rasa rules can't import Python); tests/test_rules.py
checks that every rule lists exactly these.
"""

# Intents that leave any form: each has one rule that deactivates the active form.
LEAVING_INTENTS = frozenset({"stop", "goodbye", "human_handoff", "delete_my_data"})
# Intents answered in the middle of a form, which then asks its question again.
ASIDE_INTENTS = frozenset({"greet", "thanks", "bot_challenge", "out_of_scope", "ask_privacy"})
# Below this confidence "call me maybe" is an (invalid) phone number, not a wish to stop.
INTERRUPTION_CONFIDENCE = 0.8
