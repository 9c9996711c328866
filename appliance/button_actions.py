"""What the button's presses mean in each state: an adapter from presses to `Controls` commands.

`triggers/button.py` turns the pin into presses; this module decides what each press does. A
second button or another input adds an adapter like this one and nothing else.
"""

from __future__ import annotations

from .controls import Controls
from .events import ButtonPressed
from .settings import ButtonSettings
from .state import CONVERSATION_STATES, State


class ButtonActions:
    def __init__(self, controls: Controls, settings: ButtonSettings) -> None:
        self._controls = controls
        self._settings = settings

    @property
    def push_to_talk(self) -> bool:
        return self._settings.mode == "hold"

    def short_press(self) -> None:
        """Dismiss a ring or an announcement; start a conversation; in one: talk (push-to-talk), interrupt,
        or end it."""
        controls = self._controls
        current = controls.state.state
        if current in (State.RINGING, State.ANNOUNCING):
            controls.dismiss("button")
        elif current == State.ENROLLING:
            controls.stop("button")  # cancels the enrolment
        elif current == State.IDLE:
            controls.start("button")
        elif current in CONVERSATION_STATES and controls.conversation is not None:
            if self.push_to_talk:
                controls.events.publish(ButtonPressed(action="talk"))
                controls.talk()
            elif self._settings.in_conversation == "interrupt" and current in (State.SPEAKING, State.THINKING):
                controls.events.publish(ButtonPressed(action="interrupt"))
                controls.interrupt()
            else:
                controls.events.publish(ButtonPressed(action="end"))
                controls.stop("button")

    def release(self) -> None:
        """Push-to-talk let go: the turn is complete."""
        if self._controls.conversation is not None:
            self._controls.events.publish(ButtonPressed(action="commit"))
        self._controls.commit()

    def long_press(self) -> None:
        """Dismiss a ring; mute or unmute when resting; end a conversation."""
        controls = self._controls
        current = controls.state.state
        if current in (State.RINGING, State.ANNOUNCING):
            controls.dismiss("button")
        elif current == State.ENROLLING:
            controls.stop("button")
        elif current in (State.IDLE, State.MUTED):
            controls.toggle_mute("button")
        elif current in CONVERSATION_STATES and controls.conversation is not None:
            controls.stop("button")
