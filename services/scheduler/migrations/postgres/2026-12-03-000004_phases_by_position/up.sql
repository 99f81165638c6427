-- A change reads a run's phases by position (`idx`): its scope's few rows.
-- The primary key is (run_id, phase_id), so each such read walked every
-- phase of the run: a 10,000-wide fan-out cost grew with its size.
CREATE INDEX phases_by_position ON phases (run_id, idx);
