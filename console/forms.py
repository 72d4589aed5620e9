"""The console's forms (Flask-WTF: every POST form carries its CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TimeField,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Optional

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
