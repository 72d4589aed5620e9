"""The console's forms (Flask-WTF: every POST form carries its CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import URL, DataRequired, EqualTo, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from clinic.models import ROLES, SOURCE_PHONE, SOURCE_WALK_IN
from clinic.staff import MIN_PASSWORD_LENGTH


class SignInForm(FlaskForm):
    email = StringField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class WelcomeForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)],
        description=f"At least {MIN_PASSWORD_LENGTH} characters.",
    )
    repeat = PasswordField(
        "The same password again",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
    )


class BookingForm(FlaskForm):
    """The caller's details and the chosen time; doctor, visit and day come from the page."""

    doctor = HiddenField(validators=[DataRequired()])
    visit = HiddenField()
    day = HiddenField(validators=[DataRequired()])
    start = RadioField("Time", choices=[], validate_choice=False,
                       validators=[InputRequired(message="Choose a time.")])  # fmt: skip
    name = StringField("Patient's full name", validators=[DataRequired(), Length(max=100)])
    phone = StringField("Phone number", validators=[DataRequired(), Length(max=40)])
    source = RadioField(
        "How they reached us",
        choices=[(SOURCE_PHONE, "Phone call"), (SOURCE_WALK_IN, "Walk-in")],
        default=SOURCE_PHONE,
    )
    consent = BooleanField(
        "They agreed that the clinic keeps their name and phone number for their appointments",
        validators=[DataRequired(message="The booking needs their consent.")],
    )


class MoveForm(FlaskForm):
    start = RadioField("New time", choices=[], validate_choice=False,
                       validators=[InputRequired(message="Choose a time.")])  # fmt: skip


class BlockForm(FlaskForm):
    doctor = SelectField("Who", choices=[], validate_choice=False)
    day = DateField("From (day)", validators=[DataRequired(message="Give a day.")])
    start_time = TimeField("From (time)", validators=[Optional()])
    end_day = DateField("To (day)", validators=[Optional()])
    end_time = TimeField("To (time)", validators=[Optional()])
    reason = StringField("Reason", validators=[DataRequired(), Length(max=200)])
    decision = HiddenField()  # after the check: "cancel" or "keep" the visits it hits


class StaffForm(FlaskForm):
    email = StringField("E-mail", validators=[DataRequired(), Length(max=254)])
    role = SelectField(
        "Role",
        choices=[(role, role.capitalize()) for role in ROLES],
        default=ROLES[1],
    )


class DoctorForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    slot_minutes = IntegerField(
        "Slot length (minutes)",
        validators=[InputRequired(message="Give the slot length in minutes.")],
        description="Times are offered on this grid: 30 gives 9:00, 9:30, 10:00…",
    )
    visits = SelectMultipleField(
        "Visit types offered",
        choices=[],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    mon = StringField("Monday")
    tue = StringField("Tuesday")
    wed = StringField("Wednesday")
    thu = StringField("Thursday")
    fri = StringField("Friday")
    sat = StringField("Saturday")
    sun = StringField("Sunday")

    DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class OverrideForm(FlaskForm):
    day = DateField("Date", validators=[DataRequired(message="Give the date.")])
    hours = StringField(
        "Hours that day", description="Leave empty for a day off, or give ranges: 10:00-14:00."
    )


class VisitTypeForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    minutes = IntegerField(
        "Length (minutes)", validators=[InputRequired(message="Give the length in minutes.")]
    )
    price = StringField("Price", validators=[DataRequired(), Length(max=16)])
    price_from = BooleanField('The price can be higher (shown as "from")')
    words = StringField(
        "How patients name it",
        validators=[Length(max=500)],
        description="Words or phrases, separated by commas: checkup, check-up, regular visit.",
    )


class TopicForm(Form):
    words = StringField("Words that ask it", validators=[Length(max=500)])
    answer = TextAreaField("Answer", validators=[Length(max=1000)])


class FactsForm(FlaskForm):
    name = StringField("Clinic name", validators=[DataRequired(), Length(max=200)])
    address = StringField("Address", validators=[Length(max=300)])
    map_link = StringField("Map link", validators=[Optional(), URL(), Length(max=500)])
    phone = StringField("Phone", validators=[Length(max=40)])
    languages = StringField(
        "Languages spoken", validators=[Length(max=200)], description="Separated by commas."
    )
    insurance = TextAreaField("Insurance", validators=[Length(max=1000)])
    parking = TextAreaField("Parking", validators=[Length(max=1000)])
    accessibility = TextAreaField("Accessibility", validators=[Length(max=1000)])
    instagram_handle = StringField("Instagram handle", validators=[Length(max=60)])
    currency = StringField("Currency symbol", validators=[Length(max=5)])
    topics = FieldList(FormField(TopicForm), min_entries=1)


class TextForm(FlaskForm):
    text = TextAreaField("Text", validators=[DataRequired(), Length(max=2000)])
