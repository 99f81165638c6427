-- What lets a change to a run read only the phases it touches: the count of
-- phases per state (the run's status follows from it), and per phase how
-- many of its needs are not yet satisfied. Runs stored before this carry ''
-- and -1 and are counted in full the first time they change.
ALTER TABLE runs ADD COLUMN phase_tally TEXT NOT NULL DEFAULT '';
ALTER TABLE phases ADD COLUMN unmet_needs INTEGER NOT NULL DEFAULT -1;
