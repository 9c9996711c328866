"""What the person sees and hears of the appliance's state: `leds` (one pattern per state, for an
RGB LED, a single LED or none; a subscriber of the event stream) and `earcons` (the short sounds)."""
