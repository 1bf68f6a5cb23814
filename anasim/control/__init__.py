"""Closed-loop control (issue 12): plants as ODEs written once (:mod:`.plants`), controllers that
imitate the plant's expert (:mod:`.controller`), the torchdiffeq loop (:mod:`.rollout`), the
circuit loop with the plant in the ngspice transient (:mod:`.circuit`) or in lock-step through
PySpice (:mod:`.lockstep`), and their comparison (:mod:`.compare`, ``anasim control``)."""
