"""End to end: staff take over. Real rasa server (Instagram channel) + action server + fake
Graph API + SQLite; everything goes in through signed webhooks, as Meta sends them.

"No reply" is checked once the message is fully handled: its inbox row is done and no reply
to it waits in the outbox; by then the fake Graph API must hold nothing new for the patient
(not even a typing indicator)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from clinic.audit import hash_id
from clinic.db import create_database_engine, transaction
from clinic.models import Handoff, InboxMessage, OutboxMessage
from clinic.settings import INSTAGRAM_INBOX_APP_ID
from connectors.fake_graph import FakeGraphApi
from connectors.simulate import delivery, echo_delivery, handover_delivery, post_delivery
from tests.helpers import wait_until
from tests.instagram_patient import InstagramPatient
from tests.servers import ROOT, clinic_command, running_stack

SECRET = "handoff-app-secret"
HASH_KEY = "handoff-test-hash-key"
OUR_APP = "1000000000000042"
OTHER_APP = "1000000000000777"  # another tool the clinic uses
HANDOFF_TEXT = "I've asked our team to take over."
GREETING = "Hi! I'm the clinic's booking assistant."
_mids = itertools.count()


class HandoffStack:
    def __init__(self, rasa_url: str, graph: FakeGraphApi, database_url: str):
        self.rasa_url, self.graph, self.database_url = rasa_url, graph, database_url
        self.engine = create_database_engine(database_url)

    def patient(self, sender_id: str) -> InstagramPatient:
        return InstagramPatient(self.rasa_url, self.graph, sender_id, SECRET)

    def post(self, body: bytes) -> None:
        assert post_delivery(self.rasa_url, body, SECRET) == 200

    def hand_off(self, patient: InstagramPatient) -> dict:
        (answer,) = patient.say("can I talk to a real person please")
        assert answer["text"].startswith(HANDOFF_TEXT)
        return self.graph.deliveries_to(patient.sender_id)[-1].body

    def send_unanswered(self, patient: InstagramPatient, words: str) -> None:
        """The patient writes; the message is handled and nothing at all is sent back."""
        before = len(self.graph.deliveries_to(patient.sender_id))
        mid = f"mid.handoff.{next(_mids)}"
        self.post(delivery(patient.sender_id, words, mid=mid))
        assert wait_until(lambda: self.handled(mid), 60), f"{mid} not handled"
        assert len(self.graph.deliveries_to(patient.sender_id)) == before

    def stored(self, mid: str) -> str | None:
        """The inbox status of message `mid` (None: never stored)."""
        with transaction(self.engine) as session:
            return session.scalar(select(InboxMessage.status).where(InboxMessage.mid == mid))

    def handled(self, mid: str) -> bool:
        status = self.stored(mid)
        with transaction(self.engine) as session:
            waiting = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.origin == mid, OutboxMessage.status == "pending")
            )
        return status == "done" and waiting == 0

    def time_passes(self, sender_id: str, column: str, by: timedelta) -> None:
        """Moves one open hand-off's `opened_at` or `staff_at` back by `by`."""
        with transaction(self.engine) as session:
            row = session.scalars(select(Handoff).where(Handoff.sender_id == sender_id)).one()
            setattr(row, column, getattr(row, column) - by)

    def handoffs_of(self, sender_id: str) -> list[tuple[str, str | None]]:
        hashed = hash_id(sender_id, HASH_KEY)
        with transaction(self.engine) as session:
            rows = session.scalars(
                select(Handoff).where(Handoff.sender_hash == hashed).order_by(Handoff.id)
            )
            return [(row.state, row.close_reason) for row in rows]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[HandoffStack]:
    tmp_path = tmp_path_factory.mktemp("handoff")
    database_url = f"sqlite:///{tmp_path / 'handoff.db'}"
    with FakeGraphApi(access_token="handoff-token") as graph:
        env = dict(
            INSTAGRAM_VERIFY_TOKEN="handoff-verify",
            INSTAGRAM_APP_SECRET=SECRET,
            INSTAGRAM_ACCESS_TOKEN="handoff-token",
            INSTAGRAM_GRAPH_URL=graph.base_url,
            INSTAGRAM_APP_ID=OUR_APP,
            ID_HASH_KEY=HASH_KEY,
        )
        with running_stack(database_url, tmp_path, **env) as servers:
            for command in (["init"], ["seed", "--demo"]):
                assert clinic_command(database_url, command) == 0
            servers.start_action_server()
            rasa_url = servers.start_rasa(
                credentials=ROOT / "credentials.yml", api=False, ready_path="/webhooks/instagram/"
            )
            handoff_stack = HandoffStack(rasa_url, graph, database_url)
            yield handoff_stack
            handoff_stack.engine.dispose()


def test_a_hand_off_passes_control_and_the_bot_then_stays_quiet(stack):
    patient = stack.patient("IG_TEST_HANDOFF_PASS")
    (greeting,) = patient.say("hi")
    assert greeting["text"].startswith(GREETING)

    handoff = stack.hand_off(patient)

    assert handoff["thread_control"] == {"app_id": INSTAGRAM_INBOX_APP_ID, "control_type": "pass"}
    assert handoff["message"]["text"].startswith(HANDOFF_TEXT)
    stack.send_unanswered(patient, "hello? is anyone there")
    stack.send_unanswered(patient, "I want to book an appointment")
    assert stack.handoffs_of(patient.sender_id) == [("waiting", None)]


def test_control_coming_back_lets_the_bot_answer_again(stack):
    patient = stack.patient("IG_TEST_HANDOFF_BACK")
    stack.hand_off(patient)
    stack.send_unanswered(patient, "hello?")

    # Staff hand the conversation back from the inbox: Meta tells us in a webhook.
    stack.post(handover_delivery(patient.sender_id, OUR_APP, INSTAGRAM_INBOX_APP_ID))

    (greeting,) = patient.say("hi again")
    assert greeting["text"].startswith(GREETING)
    assert stack.handoffs_of(patient.sender_id) == [("closed", "returned")]


def test_control_passed_to_another_app_does_not_count_as_coming_back(stack):
    patient = stack.patient("IG_TEST_HANDOFF_ELSEWHERE")
    stack.hand_off(patient)

    stack.post(handover_delivery(patient.sender_id, OTHER_APP, INSTAGRAM_INBOX_APP_ID))

    stack.send_unanswered(patient, "hi")
    assert stack.handoffs_of(patient.sender_id) == [("waiting", None)]


def test_a_staff_message_pauses_the_bot_for_that_patient_only(stack):
    patient = stack.patient("IG_TEST_HANDOFF_STAFF")
    other = stack.patient("IG_TEST_HANDOFF_NEIGHBOUR")
    (greeting,) = patient.say("hi")
    assert greeting["text"].startswith(GREETING)

    # A receptionist answers from the Instagram app: an echo with no app id.
    stack.post(echo_delivery(patient.sender_id, "Hello, this is Anna from the front desk"))

    stack.send_unanswered(patient, "oh hi Anna, can you move my visit?")
    (answer,) = other.say("hi")
    assert answer["text"].startswith(GREETING)
    assert stack.handoffs_of(patient.sender_id) == [("with_staff", None)]

    # Staff of another app writing pauses the bot too; the pause counts from the latest.
    stack.post(echo_delivery(patient.sender_id, "One moment please", app_id=OTHER_APP))
    stack.time_passes(patient.sender_id, "staff_at", timedelta(minutes=59))
    stack.send_unanswered(patient, "thanks")

    # STAFF_PAUSE_MINUTES (60) after staff's latest message, the bot answers again.
    stack.time_passes(patient.sender_id, "staff_at", timedelta(minutes=2))
    (answer,) = patient.say("hi")
    assert answer["text"].startswith(GREETING)
    assert stack.handoffs_of(patient.sender_id) == [("closed", "timeout")]


def test_after_the_timeout_the_bot_takes_the_conversation_back_and_answers(stack):
    patient = stack.patient("IG_TEST_HANDOFF_TIMEOUT")
    stack.hand_off(patient)
    stack.time_passes(patient.sender_id, "opened_at", timedelta(hours=23, minutes=50))
    stack.send_unanswered(patient, "still waiting...")

    stack.time_passes(patient.sender_id, "opened_at", timedelta(minutes=11))  # 24 h 1 min
    (greeting,) = patient.say("hello??")

    assert greeting["text"].startswith(GREETING)
    paths = [r.path for r in stack.graph.deliveries_to(patient.sender_id)]
    take_back = [n for n, path in enumerate(paths) if path.endswith("/me/take_thread_control")]
    first_answer = max(n for n, path in enumerate(paths) if path.endswith("/me/messages"))
    assert len(take_back) == 1 and take_back[0] < first_answer
    assert stack.handoffs_of(patient.sender_id) == [("closed", "timeout")]


def test_while_the_inbox_holds_the_conversation_standby_messages_are_left_to_staff(stack):
    patient = stack.patient("IG_TEST_HANDOFF_STANDBY")
    stack.hand_off(patient)
    before = len(stack.graph.deliveries_to(patient.sender_id))

    # With the inbox holding the conversation, Meta sends the patient's messages on the
    # standby channel; the bot neither answers nor keeps them.
    stack.post(delivery(patient.sender_id, "hello?", mid="mid.standby.1", standby=True))
    assert stack.stored("mid.standby.1") is None
    assert len(stack.graph.deliveries_to(patient.sender_id)) == before

    # Past the timeout, the next one is the bot's again: it takes the conversation back.
    stack.time_passes(patient.sender_id, "opened_at", timedelta(hours=24, minutes=1))
    body = delivery(patient.sender_id, "hi", mid="mid.standby.2", standby=True)
    stack.post(body)
    assert wait_until(lambda: len(patient.messages()) > patient.read, 60)
    (greeting,) = patient.messages()[patient.read :]
    assert greeting["text"].startswith(GREETING)
    sent = stack.graph.deliveries_to(patient.sender_id)[before:]
    requests = [r.path.rsplit("/", 1)[1] for r in sent if "sender_action" not in r.body]
    assert requests == ["take_thread_control", "messages"]
    assert stack.handoffs_of(patient.sender_id) == [("closed", "timeout")]


def test_the_bots_own_echoes_change_nothing(stack):
    patient = stack.patient("IG_TEST_HANDOFF_ECHO")
    (greeting,) = patient.say("hi")
    sent = stack.graph.deliveries_to(patient.sender_id)[-1]

    # Meta echoes every message the bot sent, with our app's id; should an echo come
    # without it, its id is still the one Graph gave the bot's message.
    stack.post(echo_delivery(patient.sender_id, greeting["text"], app_id=OUR_APP))
    stack.post(echo_delivery(patient.sender_id, greeting["text"], mid=sent.message_id))

    (answer,) = patient.say("hello")
    assert answer["text"]
    assert stack.handoffs_of(patient.sender_id) == []


def test_staff_see_the_queue_without_patient_text(stack, capsys):
    patient = stack.patient("IG_TEST_HANDOFF_QUEUE")
    stack.hand_off(patient)

    assert clinic_command(stack.database_url, ["handoffs"]) == 0

    listing = capsys.readouterr().out
    ref = hash_id(patient.sender_id, HASH_KEY)[:8]
    (line,) = [line for line in listing.splitlines() if line.startswith(ref)]
    assert line.split("\t")[1:3] == ["waiting", "0 min old"]
    assert patient.sender_id not in listing and "person" not in listing


def test_a_message_no_rule_expects_gets_one_helpful_answer(stack):
    # "anyone?" reads as picking an option, with no list to pick from: no rule applies.
    patient = stack.patient("IG_TEST_NO_RULE")
    mid = "mid.no-rule.1"
    stack.post(delivery(patient.sender_id, "anyone?", mid=mid))
    assert wait_until(lambda: stack.handled(mid), 60)
    (help_offer,) = patient.messages()
    assert help_offer["text"].startswith("Sorry, I didn't quite get that.")
