"""One router per wire format; each translates to and from the PredictionService, nothing more."""
