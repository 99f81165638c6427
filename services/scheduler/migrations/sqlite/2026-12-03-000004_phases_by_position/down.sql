DROP INDEX phases_by_position;
