ALTER TABLE phases DROP COLUMN unmet_needs;
ALTER TABLE runs DROP COLUMN phase_tally;
