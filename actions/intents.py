"""The intent sets the forms and the dialogue rules share, defined once.

data/rules.yml spells them out (Rasa rules can't import Python); tests/test_architecture.py
checks that every rule lists exactly these.
"""

# Intents that leave any form: each has one rule that deactivates the active form.
LEAVING_INTENTS = frozenset({"stop", "goodbye", "human_handoff", "delete_my_data"})
# Intents that leave a form for another task: a rule per form deactivates it and starts
# that task (not inside the form that already does it).
SWITCH_INTENTS = frozenset({"cancel_appointment", "reschedule_appointment"})
# Intents answered in the middle of a form, which then asks its question again; unless
# the words answer the form's question, and are not plainly a question (a name at the
# name question: "Hope Price").
ASIDE_INTENTS = frozenset(
    {
        "greet",
        "thanks",
        "bot_challenge",
        "out_of_scope",
        "ask_privacy",
        "ask_clinic_info",
        "view_appointment",
        "refuse_texts",
        "accept_texts",
    }
)
# Below this confidence "call me maybe" is an (invalid) phone number, not a wish to stop.
INTERRUPTION_CONFIDENCE = 0.8
